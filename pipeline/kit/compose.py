"""Which documents and pages make up one person's kit (pure: no database, no drawing)."""
from __future__ import annotations

from dataclasses import dataclass

from ..layout import KitLayout

FIELDS_ON_FIRST_PAGE = 3  # dependents 1-3 on provision form page 1, 4-8 on page 2


@dataclass(frozen=True)
class PagePlan:
    document: str
    page: int


def plan(kind: str, dependents: int, layout: KitLayout, *, duplex: bool = True,
         dependents_copies: bool = True) -> list[PagePlan]:
    """Employee: cover letter, provision form (2nd page for >3 dependents), delegation agreement (only with
    dependents), refusal form, ID-copy sheet (a 2nd page for the dependents' number-check copies, optional for
    the person, unless `dependents_copies` is off), envelope label. Payee: notice letter first, then the same
    forms without the delegation agreement. A filler page keeps every kit starting on a new sheet when duplex."""
    pages = [PagePlan("cover_letter" if kind == "employee" else "notice_letter", 1), PagePlan("provision_form", 1)]
    if dependents > FIELDS_ON_FIRST_PAGE:
        pages.append(PagePlan("provision_form", 2))
    if kind == "employee" and dependents:
        pages.append(PagePlan("delegation_agreement", 1))
    pages += [PagePlan("refusal_form", 1), PagePlan("id_copy_sheet", 1)]
    if kind == "employee" and dependents and dependents_copies:
        pages.append(PagePlan("id_copy_sheet", 2))
    pages.append(PagePlan("envelope_label", 1))
    if duplex and len(pages) % 2:
        pages.append(PagePlan("filler", 1))
    for p in pages:
        layout.documents[p.document].page(p.page)  # fail early if the layout lacks a planned page
    return pages


def fields_in_use(document: str, page: int, dependents: int) -> list[str]:
    """Number fields printed (and therefore read) on a page, given how many dependents the person has."""
    if document != "provision_form":
        return []
    if page == 1:
        return ["self"] + [f"dependent{i}" for i in range(1, min(dependents, FIELDS_ON_FIRST_PAGE) + 1)]
    return [f"dependent{i}" for i in range(FIELDS_ON_FIRST_PAGE + 1, dependents + 1)]
