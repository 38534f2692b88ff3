"""Staging: a centre's exports read, mapped and validated, before anything is loaded.

* ``inbox``: which files are new (content hash), still being copied, or never read;
* ``mapping``: the per-centre mapping files (format, columns, codes, units, dates);
* ``read``: a file read as text, renamed, reshaped, translated and cast;
* ``identifiers``: direct identifier columns, which reject a file whole;
* ``validate``: the Pandera schemas, lazily (every failure at once);
* ``relations``: rules across forms (known patient, dates after inclusion);
* ``pseudonym``: patient keys (HMAC of centre and local id);
* ``prepare``: one centre's new files staged, concurrently with the others.
"""
