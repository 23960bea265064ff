"""The XDS.b Document Repository actor: ITI-41 Provide and Register Document Set-b and
ITI-43 Retrieve Document Set (``repository.service``), content-addressed blobs
(``repository.blobs``) and its own index (``repository.tables``, ``repository.db``)."""
