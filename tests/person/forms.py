"""Valid inputs of the person's file to mutate in tests (synthetic persons, never real)."""

from __future__ import annotations

import copy
from typing import Any

VALID_SNILS = "112-233-445 95"


def application(**sections: Any) -> dict[str, Any]:
    """A valid accompaniment application registered on paper on 12.01.2026 (Kaliningrad)."""
    doc: dict[str, Any] = {
        "submission": {"channel": "paper", "signature": "handwritten",
                       "registered_at": "2026-01-12T10:00:00+02:00", "registered_by": "st_1"},
        "request": {"kind": "accompaniment", "addressee": "ГБУ КО «Реабилитационный центр»",
                    "action": "provide", "participant": "rehabilitation_organisation"},
        "applicant": {"kind": "person"},
        "person": {
            "full_name": {"last_name": "Синтетова", "first_name": "Анна",
                          "patronymic": "Петровна"},
            "birth_date": "1990-05-17", "sex": "female", "snils": VALID_SNILS,
            "identity_document": {"kind": "passport_rf", "series": "2710", "number": "123456",
                                  "issued_on": "2010-06-01", "issued_by": "УФМС России",
                                  "issuer_code": "390-001"},
            "registration_address": {"postal_code": "236000", "region_code": "39",
                                     "region": "Калининградская область",
                                     "locality": "Калининград", "street": "ул. Примерная",
                                     "house": "1", "apartment": "2"},
            "phones": [{"kind": "mobile", "number": "+7 911 123-45-67"}],
            "email": "anna@example.ru",
            "preferred_channel": "messenger",
        },
        "disability": {"group": "II", "cause": "общее заболевание",
                       "established_on": "2020-03-01", "indefinite": True},
        "consent_confirmed": True,
    }
    doc.update(sections)
    return copy.deepcopy(doc)


REPRESENTATIVE: dict[str, Any] = {
    "kind": "legal_representative",
    "full_name": {"last_name": "Синтетов", "first_name": "Пётр"},
    "authority_document": {"kind": "guardianship_act", "number": "123-р",
                           "issued_on": "2015-02-03", "issued_by": "Орган опеки г. Калининграда"},
    "identity_document": {"kind": "passport_rf", "series": "2701", "number": "654321",
                          "issued_on": "2001-01-10", "issued_by": "ОВД"},
    "address": {"postal_code": "236000", "region_code": "39",
                "region": "Калининградская область", "locality": "Калининград", "house": "3"},
}


def put(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``value`` at the dotted ``path`` (``phones.0`` for items);
    the value ``DELETE`` removes the key."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


DELETE = object()
