"""Run NIST XDS Toolkit test plans (``testkit/tests/<id>/<section>/testplan.xml``) as
published against an XDS.b registry and repository; see README.md for what is
supported."""

from conformance.testkit.runner import run_testkit

__all__ = ["run_testkit"]
