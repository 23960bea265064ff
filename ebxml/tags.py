"""Element names of the ebRIM 3.0, ebRS 3.0, XDS.b and XDS-I.b schemas, in Clark notation.

Built once from the namespaces in ``ebxml.vocabulary`` so parse and serialize name
elements the same way (``etree.SubElement(parent, RIM.Slot)``, ``elem.iterfind(RIM.Slot)``).
Element names are as the XSDs spell them (``schemas/nist-toolkit/v3``).
"""

from __future__ import annotations

from types import SimpleNamespace

from ebxml.vocabulary import NS_LCM, NS_QUERY, NS_RIM, NS_RS, NS_XDSB, NS_XDSI, NS_XOP


def _names(namespace: str, *local_names: str) -> SimpleNamespace:
    return SimpleNamespace(**{name: f"{{{namespace}}}{name}" for name in local_names})


# rim.xsd
RIM = _names(
    NS_RIM,
    "AdhocQuery",
    "Association",
    "Classification",
    "Description",
    "ExternalIdentifier",
    "ExtrinsicObject",
    "LocalizedString",
    "Name",
    "ObjectRef",
    "RegistryObjectList",
    "RegistryPackage",
    "Slot",
    "Value",
    "ValueList",
    "VersionInfo",
)
# rs.xsd
RS = _names(NS_RS, "RegistryError", "RegistryErrorList", "RegistryResponse")
# lcm.xsd
LCM = _names(NS_LCM, "SubmitObjectsRequest")
# query.xsd
QUERY = _names(NS_QUERY, "AdhocQueryRequest", "AdhocQueryResponse", "ResponseOption")
# XDS.b_DocumentRepository.xsd
XDSB = _names(
    NS_XDSB,
    "Document",
    "DocumentRequest",
    "DocumentResponse",
    "DocumentUniqueId",
    "HomeCommunityId",
    "NewDocumentUniqueId",
    "NewRepositoryUniqueId",
    "ProvideAndRegisterDocumentSetRequest",
    "RepositoryUniqueId",
    "RetrieveDocumentSetRequest",
    "RetrieveDocumentSetResponse",
    "mimeType",
)
# XDSI.b_ImagingDocumentSource.xsd
XDSI = _names(
    NS_XDSI,
    "RetrieveImagingDocumentSetRequest",
    "SeriesRequest",
    "StudyRequest",
    "TransferSyntaxUID",
    "TransferSyntaxUIDList",
)
# XOP 1.0 (W3C): the include element soap/ leaves in place of an MTOM part
XOP = _names(NS_XOP, "Include")

__all__ = ["LCM", "QUERY", "RIM", "RS", "XDSB", "XDSI", "XOP"]
