"""People discovery: the faces of a photo collection gated, grouped into people, named once, and
kept named (``facerec cluster``, ``facerec people``, ``/v1/clusters``).

- :mod:`.quality`: the gate (size, score, blur, pose, cut off), each rejection with its reason.
- :mod:`.algorithms`: average linkage (the default, chosen by measurement), Chinese whispers,
  DBSCAN and HDBSCAN behind one call.
- :mod:`.threshold`: the distance threshold from a calibration at a stated false-accept rate.
- :mod:`.metrics`: pairwise and BCubed precision, recall and F1.
- :mod:`.book`, :mod:`.discover`, :mod:`.naming`, :mod:`.sheet`: the people folder, a run, what
  the user says, and the offline contact sheet.
"""
