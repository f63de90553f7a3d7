"""The application (заявление) as input: the 363н form, and the 298-п applications.

Sections, in the order they are validated (a later section's rules may read an earlier one):

- ``submission`` — paper registered by staff, or the Единый портал with a simple or an enhanced
  unqualified electronic signature (004 п.12); the instant of registration, which the sending
  deadline counts from (001 Порядок п.10);
- ``request`` — what is asked: to provide, stop or resume accompaniment and by which participant
  (004 п.11, п.12, the form's п.1); supported living or social employment with the person's
  preferences and choice of provider (001 Регламент п.14, п.15 пп.2); early help (003);
- ``applicant`` — the person, their legal or authorised representative with the document of
  authority (004 п.12, the form's п.3), or, for social employment only, another citizen, a state
  body or a public association on the person's behalf (001 Регламент п.14);
- ``person`` — the form's п.2 plus the preferred channel of contact (004 п.7);
- ``disability`` — group, cause, date established, term (the form's п.2);
- ``consent_confirmed`` — the form's consent box (152-ФЗ art. 9); the consent itself is a record
  of its own (``models.consent``).

``validate_application(raw)`` returns the application or every invalid field at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from models.ages import ADULT_AGE, Sex, age_on, anniversary
from models.contacts import Address, ContactChannel, Email, Phone, PhoneKind
from models.disability import Disability, DisabilityGroup
from models.identity import (
    LEGAL_REPRESENTATIVE_DOCUMENTS,
    AuthorityDocument,
    AuthorityDocumentKind,
    FullName,
    IdentityDocument,
)
from models.input_validation import Checked, InputModel, Text, check, rule_error
from models.snils import Snils

NOT_APPLICABLE_RU = "Это поле не заполняется для выбранного варианта"
REQUIRED_RU = "Обязательное поле для выбранного варианта"


def _presence(value: object, *, required: bool, allowed: bool, required_ru: str = REQUIRED_RU,
              field: str | None = None) -> None:
    """The one rule for "this field is asked / not asked for this kind" (empty = absent)."""
    given = value is not None and value != () and value != frozenset()
    if given and not allowed:
        raise rule_error("not_applicable", NOT_APPLICABLE_RU, field=field)
    if not given and required:
        raise rule_error("required_for_kind", required_ru, field=field)


# --- submission -----------------------------------------------------------------------------

class SubmissionChannel(StrEnum):
    """004 п.12: on paper, or through the Единый портал."""

    paper = "paper"
    portal = "portal"


class SignatureKind(StrEnum):
    """004 п.12: a portal application is signed with a simple or an enhanced unqualified
    electronic signature; a paper one by hand."""

    handwritten = "handwritten"
    simple_electronic = "simple_electronic"
    enhanced_unqualified = "enhanced_unqualified"


PORTAL_SIGNATURES = frozenset({SignatureKind.simple_electronic, SignatureKind.enhanced_unqualified})


class Submission(InputModel):
    """How the application came and when it was registered."""

    channel: SubmissionChannel
    signature: SignatureKind
    registered_at: AwareDatetime = Field(
        description="The instant of registration, with the region's UTC offset; the sending "
                    "deadline counts from it (001 Порядок п.10)")
    registered_by: str | None = Field(default=None, max_length=40, validate_default=True,
                                      description="Staff id of who registered a paper one")
    portal_request_id: str | None = Field(default=None, max_length=40, validate_default=True,
                                          description="The Единый портал's number of the request")
    certificate_serial: str | None = Field(default=None, max_length=80, validate_default=True,
                                           description="Enhanced unqualified signature: the "
                                                       "certificate's serial number")

    @field_validator("signature")
    @classmethod
    def _signature_fits_channel(cls, v: SignatureKind, info: ValidationInfo) -> SignatureKind:
        """004 п.12: a portal application carries a simple or enhanced unqualified e-signature."""
        channel = info.data.get("channel")
        if channel == SubmissionChannel.portal and v not in PORTAL_SIGNATURES:
            raise rule_error("portal_signature",
                             "Заявление через портал подписывается простой или усиленной "
                             "неквалифицированной электронной подписью")
        if channel == SubmissionChannel.paper and v != SignatureKind.handwritten:
            raise rule_error("paper_signature", "Заявление на бумаге подписывается собственноручно")
        return v

    @field_validator("registered_by", "portal_request_id")
    @classmethod
    def _by_channel(cls, v: str | None, info: ValidationInfo) -> str | None:
        """004 п.12: paper is registered by a staff member; the portal gives its request number."""
        channel = info.data.get("channel")
        if channel is not None:
            wanted = (SubmissionChannel.paper if info.field_name == "registered_by"
                      else SubmissionChannel.portal)
            _presence(v or None, required=channel == wanted, allowed=channel == wanted)
        return v

    @field_validator("certificate_serial")
    @classmethod
    def _certificate(cls, v: str | None, info: ValidationInfo) -> str | None:
        signature = info.data.get("signature")
        if signature is not None:
            enhanced = signature == SignatureKind.enhanced_unqualified
            _presence(v or None, required=enhanced, allowed=enhanced)
        return v

    @property
    def application_date(self) -> date:
        """The date of registration in the offset it was given with (the region's)."""
        return self.registered_at.date()


# --- request --------------------------------------------------------------------------------

class RequestKind(StrEnum):
    """The route the application asks for."""

    accompaniment = "accompaniment"  # 363н
    supported_living = "supported_living"  # 000, 298-п Порядок
    social_employment = "social_employment"  # 298-п Регламент
    early_help = "early_help"  # 003


class AccompanimentAction(StrEnum):
    """The form's п.1: предоставить, прекратить, возобновить (004 п.11, п.12)."""

    provide = "provide"
    stop = "stop"
    resume = "resume"


class AccompanimentParticipant(StrEnum):
    """Who provides the accompaniment asked about (004 п.3 а, б, г; the form's п.1)."""

    mse = "mse"
    sfr = "sfr"
    rehabilitation_organisation = "rehabilitation_organisation"


class EarlyHelpGround(StrEnum):
    """Why a child belongs to the early-help target group (003 п.9, п.10: "дети целевой
    группы"; see docs/person-file.md for the reading)."""

    disabled_child = "disabled_child"
    developmental_limitation = "developmental_limitation"
    risk_of_limitation = "risk_of_limitation"


class ChildIdentifier(StrEnum):
    """Which organisation identified the child of the target group: a health, social
    (social protection) or education one (003 п.1 names the three systems whose
    organisations interact in early help). Not a field of the 363н form: the coordinator
    records it with the application from the referral; the route's first step asks it."""

    health = "health"
    social = "social"
    education = "education"


class ProviderChoice(InputModel):
    """The provider the person chooses (001 Регламент п.15 пп.2: freedom of choice)."""

    name: Text
    registry_number: str | None = Field(default=None, max_length=40,
                                        description="Number in the registry of providers")


_A = RequestKind.accompaniment
_SL = RequestKind.supported_living
_SE = RequestKind.social_employment
_EH = RequestKind.early_help

# field: (kinds it is required for, kinds it is allowed for)
_REQUEST_FIELDS: Mapping[str, tuple[frozenset[RequestKind], frozenset[RequestKind]]] = {
    "action": (frozenset({_A}), frozenset({_A})),
    "participant": (frozenset({_A}), frozenset({_A})),
    "preferences": (frozenset({_SE}), frozenset({_SE, _SL})),
    "activity_kinds": (frozenset(), frozenset({_SE})),
    "provider": (frozenset(), frozenset({_SE, _SL, _EH})),
    "early_help_grounds": (frozenset({_EH}), frozenset({_EH})),
    "identified_by": (frozenset(), frozenset({_EH})),
}


class ApplicationRequest(InputModel):
    """What is asked, and of whom."""

    kind: RequestKind
    addressee: Text = Field(description="The organisation the application is addressed to "
                                        "(the form's «В …»)")
    action: AccompanimentAction | None = Field(default=None, validate_default=True)
    participant: AccompanimentParticipant | None = Field(default=None, validate_default=True)
    preferences: str | None = Field(default=None, max_length=2000, validate_default=True)
    activity_kinds: tuple[Text, ...] = Field(default=(), max_length=10, validate_default=True)
    provider: ProviderChoice | None = Field(default=None, validate_default=True)
    early_help_grounds: frozenset[EarlyHelpGround] = Field(default=frozenset(),
                                                           validate_default=True)
    identified_by: ChildIdentifier | None = Field(
        default=None, validate_default=True,
        description="Early help: the organisation that identified the child (health, social "
                    "or education); absent: the template's default (health)")

    @field_validator(*_REQUEST_FIELDS)
    @classmethod
    def _asked_for_kind(cls, v: Any, info: ValidationInfo) -> Any:
        """Accompaniment: action and participant (the form's п.1); social employment: the
        preferences (001 Регламент п.14) and the kinds of activity chosen (п.15 пп.2); a provider
        is chosen for supported living, social employment and early help; early help: grounds
        and, optionally, the organisation that identified the child."""
        kind = info.data.get("kind")
        if kind is not None:
            assert info.field_name is not None
            required, allowed = _REQUEST_FIELDS[info.field_name]
            _presence(v or None, required=kind in required, allowed=kind in allowed)
        return v

    @field_validator("participant")
    @classmethod
    def _provide_by_organisation(cls, v: AccompanimentParticipant | None,
                                 info: ValidationInfo) -> AccompanimentParticipant | None:
        """004 п.12 and the form's п.1: МСЭ and СФР accompany proactively (п.6–8) — one asks
        them only to stop or resume; to provide is asked of a rehabilitation organisation."""
        if info.data.get("action") == AccompanimentAction.provide and \
                v not in (None, AccompanimentParticipant.rehabilitation_organisation):
            raise rule_error("provide_by_organisation",
                             "Предоставить сопровождение просят у реабилитационной организации; "
                             "у МСЭ и СФР — только прекратить или возобновить")
        return v


# --- applicant ------------------------------------------------------------------------------

class ApplicantKind(StrEnum):
    """Who applies (004 п.12; 001 Регламент п.14)."""

    person = "person"
    legal_representative = "legal_representative"
    authorised_representative = "authorised_representative"
    other_citizen = "other_citizen"
    state_body = "state_body"
    public_association = "public_association"


REPRESENTATIVES = frozenset({ApplicantKind.legal_representative,
                             ApplicantKind.authorised_representative})
ON_BEHALF = frozenset({ApplicantKind.other_citizen, ApplicantKind.state_body,
                       ApplicantKind.public_association})
"""001 Регламент п.14: an appeal in the person's interest — social employment only."""

_ALL = frozenset(ApplicantKind)
_NOT_PERSON = _ALL - {ApplicantKind.person}
_ORGS = frozenset({ApplicantKind.state_body, ApplicantKind.public_association})

# field: (kinds it is required for, kinds it is allowed for) — the form's п.3
_APPLICANT_FIELDS: Mapping[str, tuple[frozenset[ApplicantKind], frozenset[ApplicantKind]]] = {
    "full_name": (REPRESENTATIVES | {ApplicantKind.other_citizen}, _NOT_PERSON),
    "organisation": (_ORGS, _ORGS),
    "authority_document": (REPRESENTATIVES, REPRESENTATIVES),
    "identity_document": (REPRESENTATIVES, _NOT_PERSON - _ORGS),
    "birth_date": (frozenset(), _NOT_PERSON - _ORGS),
    "snils": (frozenset(), _NOT_PERSON - _ORGS),
    "address": (REPRESENTATIVES, _NOT_PERSON),
    "phones": (frozenset(), _NOT_PERSON),
    "email": (frozenset(), _NOT_PERSON),
}


class Applicant(InputModel):
    """Who applies. For the person themself only ``kind``: their details are in ``person``."""

    kind: ApplicantKind
    full_name: FullName | None = Field(default=None, validate_default=True)
    organisation: str | None = Field(default=None, max_length=500, validate_default=True)
    authority_document: AuthorityDocument | None = Field(default=None, validate_default=True)
    identity_document: IdentityDocument | None = Field(default=None, validate_default=True)
    birth_date: date | None = Field(default=None, validate_default=True)
    snils: Snils | None = Field(default=None, validate_default=True)
    address: Address | None = Field(default=None, validate_default=True)
    phones: tuple[Phone, ...] = Field(default=(), max_length=4, validate_default=True)
    email: Email | None = Field(default=None, validate_default=True)

    @field_validator(*_APPLICANT_FIELDS)
    @classmethod
    def _asked_for_kind(cls, v: Any, info: ValidationInfo) -> Any:
        """The form's п.3 (a representative: name, document of authority, identity document,
        address); 001 Регламент п.14 (another citizen by name; a body or association by name)."""
        kind = info.data.get("kind")
        if kind is not None:
            assert info.field_name is not None
            required, allowed = _APPLICANT_FIELDS[info.field_name]
            _presence(v or None, required=kind in required, allowed=kind in allowed)
        return v

    @field_validator("authority_document")
    @classmethod
    def _document_fits_kind(cls, v: AuthorityDocument | None,
                            info: ValidationInfo) -> AuthorityDocument | None:
        """An authorised representative acts by a power of attorney (Civil Code art. 185); a
        legal representative — parent, adoptive parent, guardian — by law (art. 26, 28, 31–35)."""
        kind = info.data.get("kind")
        if v is None:
            return v
        if kind == ApplicantKind.authorised_representative and \
                v.kind != AuthorityDocumentKind.power_of_attorney:
            raise rule_error("authority_document_kind",
                             "Уполномоченный представитель действует по доверенности",
                             field="authority_document.kind")
        if kind == ApplicantKind.legal_representative and \
                v.kind not in LEGAL_REPRESENTATIVE_DOCUMENTS:
            raise rule_error("authority_document_kind",
                             "Законный представитель подтверждает полномочия свидетельством о "
                             "рождении, актом органа опеки или решением суда, не доверенностью",
                             field="authority_document.kind")
        return v

    @field_validator("email")
    @classmethod
    def _reachable(cls, v: str | None, info: ValidationInfo) -> str | None:
        """001 Регламент п.14: whoever appeals on the person's behalf must be reachable."""
        if info.data.get("kind") in ON_BEHALF and v is None and not info.data.get("phones") \
                and info.data.get("address") is None and "phones" in info.data:
            raise rule_error("contact_required",
                             "Укажите телефон, электронную почту или адрес для ответа",
                             field="phones")
        return v


# --- person ---------------------------------------------------------------------------------

class PersonDetails(InputModel):
    """The disabled person (the form's п.2) and how they want to be reached (004 п.7)."""

    full_name: FullName
    birth_date: date
    sex: Sex
    snils: Snils
    identity_document: IdentityDocument
    registration_address: Address = Field(description="Место жительства")
    actual_address: Address | None = Field(default=None,
                                           description="Место фактического проживания, "
                                                       "if other than the registration")
    phones: tuple[Phone, ...] = Field(default=(), max_length=4)
    email: Email | None = None
    preferred_channel: ContactChannel

    @field_validator("identity_document")
    @classmethod
    def _issued_after_birth(cls, v: IdentityDocument, info: ValidationInfo) -> IdentityDocument:
        born = info.data.get("birth_date")
        if born is not None and v.issued_on < born:
            raise rule_error("issued_after_birth", "Документ не может быть выдан до рождения",
                             field="identity_document.issued_on")
        return v

    @field_validator("preferred_channel")
    @classmethod
    def _channel_reachable(cls, v: ContactChannel, info: ValidationInfo) -> ContactChannel:
        """004 п.7: the person chooses the way; the way chosen needs its contact."""
        if "phones" not in info.data or "email" not in info.data:
            return v  # the contacts themselves are invalid: reported there
        phones: tuple[Phone, ...] = info.data["phones"]
        if v == ContactChannel.email and info.data["email"] is None:
            raise rule_error("channel_needs_email",
                             "Для связи по электронной почте укажите её адрес")
        if v == ContactChannel.phone and not phones:
            raise rule_error("channel_needs_phone", "Для связи по телефону укажите номер")
        if v == ContactChannel.messenger and not any(p.kind == PhoneKind.mobile for p in phones):
            raise rule_error("channel_needs_mobile",
                             "Для сообщений в мессенджерах укажите мобильный номер")
        return v


# --- the application ------------------------------------------------------------------------

SELF_APPLICATION_AGE = 14
"""Civil Code art. 28: for a child under 14 their parents (legal representatives) act."""


class Application(InputModel):
    """An application of the 363н form (or the 298-п ones), as registered."""

    submission: Submission
    request: ApplicationRequest
    applicant: Applicant
    person: PersonDetails
    disability: Disability | None = Field(default=None, validate_default=True)
    consent_confirmed: bool = Field(
        description="The form's box: consent to processing the data of the application "
                    "(152-ФЗ art. 9); must be true", json_schema_extra={"enum": [True]})

    @field_validator("applicant")
    @classmethod
    def _applicant_fits(cls, v: Applicant, info: ValidationInfo) -> Applicant:
        """001 Регламент п.14: another citizen, a state body or a public association appeals on
        the person's behalf for social employment only; a document of authority is valid on
        the application date."""
        request: ApplicationRequest | None = info.data.get("request")
        if request is not None and v.kind in ON_BEHALF and \
                request.kind != RequestKind.social_employment:
            raise rule_error("on_behalf_social_employment_only",
                             "Иной гражданин, государственный орган или общественное объединение "
                             "могут обратиться в интересах инвалида только о социальной занятости",
                             field="applicant.kind")
        submission: Submission | None = info.data.get("submission")
        doc = v.authority_document
        if submission is not None and doc is not None:
            on = submission.application_date
            if doc.issued_on > on:
                raise rule_error("issued_before_application",
                                 "Документ о полномочиях выдан позже даты заявления",
                                 field="applicant.authority_document.issued_on")
            if doc.valid_until is not None and doc.valid_until < on:
                raise rule_error("authority_expired",
                                 "Срок действия документа о полномочиях истёк на дату заявления",
                                 field="applicant.authority_document.valid_until")
        return v

    @field_validator("person")
    @classmethod
    def _person_fits(cls, v: PersonDetails, info: ValidationInfo) -> PersonDetails:
        """Born before the application; under 14 only a legal representative applies
        (Civil Code art. 28)."""
        submission: Submission | None = info.data.get("submission")
        if submission is None:
            return v
        on = submission.application_date
        if v.birth_date > on:
            raise rule_error("born_before_application",
                             "Дата рождения позже даты заявления", field="person.birth_date")
        applicant: Applicant | None = info.data.get("applicant")
        if applicant is not None and applicant.kind == ApplicantKind.person and \
                age_on(v.birth_date, on) < SELF_APPLICATION_AGE:
            raise rule_error("self_application_age",
                             "За ребёнка младше 14 лет заявление подаёт законный представитель",
                             field="applicant.kind")
        return v

    @field_validator("disability")
    @classmethod
    def _disability_fits(cls, v: Disability | None, info: ValidationInfo) -> Disability | None:
        """The form's п.2 asks the disability of every applicant for accompaniment, supported
        living and social employment (they are for disabled people: 004 п.1, 000 п.10,
        001 Регламент п.3); early help (003) is for children with or without it. The category
        "disabled child" is for those under 18, a group for those 18 and over."""
        request: ApplicationRequest | None = info.data.get("request")
        if v is None:
            if request is not None and request.kind != RequestKind.early_help:
                raise rule_error("disability_required",
                                 "Укажите сведения об инвалидности: группу или категорию "
                                 "«ребенок-инвалид», причину, дату установления и срок")
            return v
        person: PersonDetails | None = info.data.get("person")
        submission: Submission | None = info.data.get("submission")
        if person is None:
            return v
        if v.established_on < person.birth_date or (
                submission is not None and v.established_on > submission.application_date):
            raise rule_error("established_in_range",
                             "Дата установления инвалидности — между датой рождения и датой "
                             "заявления", field="disability.established_on")
        adult_from = anniversary(person.birth_date, ADULT_AGE)
        if v.group == DisabilityGroup.child and v.established_on >= adult_from:
            raise rule_error("child_category_under_18",
                             "Категория «ребенок-инвалид» устанавливается только до 18 лет",
                             field="disability.group")
        if v.group != DisabilityGroup.child and v.established_on < adult_from:
            raise rule_error("group_from_18",
                             "Группа инвалидности устанавливается с 18 лет; до 18 — категория "
                             "«ребенок-инвалид»", field="disability.group")
        if v.group == DisabilityGroup.child and v.until is not None and v.until > adult_from:
            raise rule_error("child_until_18",
                             "Категория «ребенок-инвалид» действует не дольше чем до 18 лет",
                             field="disability.until")
        return v

    @field_validator("consent_confirmed")
    @classmethod
    def _consent(cls, v: bool) -> bool:
        """152-ФЗ art. 9 ч.1, art. 10 ч.2 п.1: health data are processed on written consent."""
        if not v:
            raise rule_error("consent_required",
                             "Без согласия на обработку персональных данных заявление не может "
                             "быть зарегистрировано")
        return v

    @property
    def application_date(self) -> date:
        return self.submission.application_date


def validate_application(raw: object) -> Checked[Application]:
    """The application, or every invalid field at once (path, rule, Russian message)."""
    return check(Application, raw)
