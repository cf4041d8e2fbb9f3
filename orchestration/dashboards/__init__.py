"""Superset dashboards as code: the bundle's definition (``bundle``, ``charts``), Superset's process (``server``),
the deployer (``deploy``) and ``collab-benefits dashboards`` (``launch``)."""
