"""Open-set identification by gallery size: does the stranger rate hold at every size?

NIST FRVT reports FNIR at a fixed FPIR for a gallery of a given size; a family's ten photos and a
company's ten thousand must both keep the promise. For each size G and photos per person P:
G people are drawn from those with at least P + 1 photos, P of each enrolled (train) and one
other photo of each searched (the known probes); one-photo people, never enrolled, are the
strangers. Every draw goes through what ``train`` and ``infer`` do: the gallery, its threshold
(:func:`threshold_by_rule`) and the k-NN vote with its ``unknown``.

DIR: the share of known probes given their own name. FPIR: the share of strangers named anyone.
The data is LFW View 1's development *test* people (``peopleDevTest.txt``), none of whom the
reference calibrations were measured on (those use the development training people).
"""

from __future__ import annotations

import numpy as np

from facerec.errors import DataError
from facerec.gallery import Gallery
from facerec.gallery.calibration import Calibration, default_threshold, open_set_calibration, per_sample_distances
from facerec.gallery.identify import identify

#: The decision rules compared: ``facerec`` (what train does: the reference for the gallery's size,
#: or the gallery's own measurement once big enough), ``per-face`` (a union bound: pairwise FAR =
#: fpir / faces, from the reference), ``legacy`` (facerec 0.2's: the gallery's own 1% leave-one-out
#: quantile from 500 faces, else the embedder's fixed 1:1 equal-error threshold).
RULES = ("facerec", "per-face", "legacy")
ALL_BUT_ONE = 0  # photos per person: every photo but the probe


def threshold_by_rule(gallery: Gallery, rule: str, fpir: float, default_euclidean: float) -> Calibration:
    """The threshold ``rule`` gives ``gallery`` (per-face distances computed) at target ``fpir``."""
    if rule == "facerec":
        return open_set_calibration(gallery, fpir=fpir)
    if rule == "per-face":
        from facerec.gallery.reference import reference_for

        ref = reference_for(gallery.pipeline)
        if ref is None:
            raise DataError(f"rule per-face needs a reference calibration for {gallery.pipeline.embedder}")
        t = ref.threshold_at_far(fpir / len(gallery))
        return Calibration(default_threshold(t, gallery.metric), "reference", far=ref.far_at(t), fpir=fpir)
    if rule == "legacy":
        imp = np.sort(gallery.impostor_d_[np.isfinite(gallery.impostor_d_)])
        if gallery.people_count < 3 or fpir * len(imp) < 5:
            if default_euclidean is None:  # 0.2's rule had the embedder's number; an onnx: model has none
                raise DataError(f"rule legacy needs a documented threshold, and {gallery.pipeline.embedder} has none")
            return Calibration(default_threshold(default_euclidean, gallery.metric), "default")
        return Calibration(float(imp[int(fpir * (len(imp) - 1))]), "calibrated", fpir=fpir)
    raise DataError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")


def by_gallery_size(
    embeddings: np.ndarray,
    names: np.ndarray,
    *,
    pipeline,
    people: set[str],
    gallery_sizes: list[int],
    photos_per_person: list[int],
    rules: list[str],
    fpir: float = 0.01,
    trials: int = 10,
    k: int = 3,
    metric: str = "euclidean",
    seed: int = 0,
) -> dict:
    """The protocol in the module's docstring on the images of ``people`` (embeddings float32
    (n, d), their person's name per row). ``photos_per_person`` 0 means all but the probe."""
    from facerec.embed import get_spec

    on = np.isin(names, sorted(people))
    emb, names = embeddings[on], names[on]
    persons, labels = np.unique(names, return_inverse=True)
    counts = np.bincount(labels)
    strangers = np.flatnonzero(counts[labels] == 1)
    if len(strangers) == 0:
        raise DataError("no one-photo people to serve as strangers")
    default_euclidean = get_spec(pipeline.embedder).default_threshold
    rng = np.random.default_rng(seed)
    rows = []
    for p in photos_per_person:
        eligible = np.flatnonzero(counts >= (p + 1 if p else 2))
        for g in gallery_sizes:
            if g > len(eligible):
                rows.append({"photos": p or "all but one", "people": g, "skipped": f"only {len(eligible)} eligible"})
                continue
            per_rule = {r: {"fpir": [], "dir": [], "threshold": [], "source": []} for r in rules}
            faces_n = []
            for _ in range(trials):
                chosen = rng.choice(eligible, g, replace=False)
                enrol, probe = [], []
                for c in chosen:
                    idx = rng.permutation(np.flatnonzero(labels == c))
                    probe.append(idx[0])
                    enrol.extend(idx[1 : 1 + p] if p else idx[1:])
                enrol, probe = np.array(enrol), np.array(probe)
                faces_n.append(len(enrol))
                gallery = Gallery(k=k, metric=metric, pipeline=pipeline).fit(
                    emb[enrol], labels[enrol], [str(x) for x in persons], [str(i) for i in enrol]
                )
                gallery.genuine_d_[:], gallery.impostor_d_[:] = per_sample_distances(emb[enrol], labels[enrol], metric)
                for r in rules:
                    cal = threshold_by_rule(gallery, r, fpir, default_euclidean)
                    known = identify(gallery, emb[probe], topk=1, calibration=cal)
                    named = identify(gallery, emb[strangers], topk=1, calibration=cal)
                    per_rule[r]["dir"].append(float(np.mean([q.label == t for q, t in zip(known, labels[probe])])))
                    per_rule[r]["fpir"].append(float(np.mean([not q.unknown for q in named])))
                    per_rule[r]["threshold"].append(cal.threshold)
                    per_rule[r]["source"].append(cal.source)
            for r, v in per_rule.items():
                rows.append(
                    {
                        "rule": r,
                        "photos": p or "all but one",
                        "people": g,
                        "faces": float(np.mean(faces_n)),
                        "fpir": float(np.mean(v["fpir"])),
                        "fpir_max": float(np.max(v["fpir"])),
                        "dir": float(np.mean(v["dir"])),
                        "dir_min": float(np.min(v["dir"])),
                        "threshold": float(np.mean(v["threshold"])),
                        "source": max(set(v["source"]), key=v["source"].count),
                    }
                )
    return {
        "protocol": "LFW View 1 development test people (peopleDevTest.txt): G people with >= P+1 photos "
        "enrolled with P photos each, one other photo each as known probe; every one-photo person a stranger",
        "people_in_split": int(len(persons)),
        "images_in_split": int(len(names)),
        "strangers": int(len(strangers)),
        "fpir_target": fpir,
        "trials": trials,
        "k": k,
        "metric": metric,
        "rows": rows,
    }
