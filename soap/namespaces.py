"""Namespaces and fixed URIs of SOAP 1.2, WS-Addressing 1.0, WS-Security and XOP.

soap/ takes its constants from here only: it knows no XDS.
"""

NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"  # answered with VersionMismatch
NS_WSA = "http://www.w3.org/2005/08/addressing"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
# SOAP 1.2 Part 1 5.2.2: roles a header block may target
SOAP_ROLE_NEXT = "http://www.w3.org/2003/05/soap-envelope/role/next"
SOAP_ROLE_ULTIMATE_RECEIVER = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
# WS-Addressing 1.0 Core 2.1 / 3.2, SOAP Binding 6: addresses and fault Actions
WSA_ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
WSA_FAULT_ACTION = "http://www.w3.org/2005/08/addressing/fault"
SOAP_FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"
# XOP 1.0 (W3C): xop:Include
NS_XOP = "http://www.w3.org/2004/08/xop/include"
UUID_PREFIX = "urn:uuid:"
