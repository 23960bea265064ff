"""zeep, an independent SOAP stack, reading the registry's WSDL at ``?wsdl``.

zeep cannot call ITI-18 from this WSDL: like the IHE WSDLs, it imports the ebRS 3.0
namespaces (query.xsd, lcm.xsd, rs.xsd) without a schemaLocation, so zeep cannot resolve
the message elements and drops both operations with a warning; and even with the
schemas at hand zeep mishandles the ebRIM substitution groups (rim:Identifiable) and
cannot send MTOM.  What zeep can check is tested here: the WSDL is well formed WSDL 1.1,
names the service, its SOAP 1.2 port and binding, and the endpoint address.
"""

from __future__ import annotations

import warnings

import pytest
from e2e_support import ServerProcess

zeep = pytest.importorskip("zeep")


def test_zeep_reads_the_registry_wsdl(server: ServerProcess) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        client = zeep.Client(f"{server.base_url}/xds/registry?wsdl")
    service = client.wsdl.services["DocumentRegistry_Service"]
    port = service.ports["DocumentRegistry_Port_Soap12"]
    assert type(port.binding).__name__ == "Soap12Binding"
    assert port.binding_options["address"].endswith("/xds/registry")
