"""ebXML RegRep 3.0 / XDS.b metadata: model, wire format (parse, serialize, wire,
retrieve), validation.  Nothing here does I/O.

The wire-format entry points are re-exported here; the model, messages, vocabulary and
validators are imported from their own modules.
"""

from ebxml.parse import (
    ParseResult,
    RegistryObjectList,
    parse_provide_and_register,
    parse_registry_object_list,
    parse_submit_objects_request,
)
from ebxml.retrieve import (
    parse_retrieve_document_set_request,
    parse_retrieve_document_set_response,
    parse_retrieve_imaging_document_set_request,
    retrieve_document_set_request,
    retrieve_document_set_response,
    retrieve_imaging_document_set_request,
)
from ebxml.serialize import (
    leaf_class,
    provide_and_register_request,
    registry_response,
    submit_objects_request,
)
from ebxml.wire import (
    adhoc_query_request,
    adhoc_query_response,
    parse_adhoc_query_request,
    parse_adhoc_query_response,
    parse_registry_response,
)

__all__ = [
    "ParseResult",
    "RegistryObjectList",
    "adhoc_query_request",
    "adhoc_query_response",
    "leaf_class",
    "parse_adhoc_query_request",
    "parse_adhoc_query_response",
    "parse_provide_and_register",
    "parse_registry_object_list",
    "parse_registry_response",
    "parse_retrieve_document_set_request",
    "parse_retrieve_document_set_response",
    "parse_retrieve_imaging_document_set_request",
    "parse_submit_objects_request",
    "provide_and_register_request",
    "registry_response",
    "retrieve_document_set_request",
    "retrieve_document_set_response",
    "retrieve_imaging_document_set_request",
    "submit_objects_request",
]
