"""The person's file and what registers people: applications of the 363н form
(``applications``), consent withdrawal (``consent_withdrawal``), ИПРА extracts
(``ipra_import``), bulk registration from a file (``bulk_import``) and the audit of every
read of a person's data (``reads``)."""
