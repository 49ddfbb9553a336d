"""Beat-annotated WFDB databases as configured (``conf/data/database/*.yaml``): where each one is, how to fetch it,
which lead and annotation file to read, and which of its records come from one subject."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecg_lightning.data.records import Lead, RecordSource, as_lead, ensure_database, lead_list, record_sources
from ecg_lightning.errors import ConfigError


@dataclass(frozen=True)
class Database:
    """One database of the config's catalog (``data.catalog.<name>``).

    Args:
        name: its key in the catalog (also the prefix of its subjects, so two databases never share one).
        root: the folder with its records.
        physionet: its PhysioNet name, for ``wfdb.get_record_list`` / ``wfdb.dl_database`` (None: not downloadable).
        download: fetch it into ``root`` when the folder has no records.
        annotation: the beat annotation file's extension (MIT-BIH, INCART, SVDB: atr).
        lead: the lead(s) read from this database, as ``data.lead`` (None: ``data.lead`` itself).
        same_subject: groups of records from one subject (MIT-BIH: 201 and 202).
        subject_pattern: a regular expression searched in the record's name, then in its header's comment lines,
            whose first group names the subject (INCART's headers: ``patient\\s+(\\d+)``; Icentia11k's names
            ``p00000_s00``: ``^(p\\d+)_s``); records where it matches nothing are their own subject.
    """

    name: str
    root: Path
    physionet: str | None = None
    download: bool = True
    annotation: str = "atr"
    lead: Lead | tuple[Lead, ...] | None = None
    same_subject: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    subject_pattern: str | None = None

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any]) -> Database:
        spec = dict(spec)
        unknown = set(spec) - {f for f in cls.__dataclass_fields__ if f != "name"}
        if unknown:
            raise ConfigError(f"data.catalog.{name}: unknown keys {sorted(unknown)}")
        if spec.get("root") is None:
            raise ConfigError(f"data.catalog.{name}.root is not set: give the folder of the {name} records")
        pattern, lead = spec.get("subject_pattern"), spec.get("lead")
        try:
            re.compile(pattern or "")
        except re.error as err:
            raise ConfigError(
                f"data.catalog.{name}.subject_pattern={pattern!r} is not a regular expression ({err})"
            ) from None
        return cls(
            name=name,
            root=Path(spec["root"]).expanduser(),
            physionet=spec.get("physionet"),
            download=bool(spec.get("download", True)),
            annotation=str(spec.get("annotation", "atr")),
            lead=None if lead is None else as_lead(lead),
            same_subject=tuple(tuple(str(r) for r in group) for group in spec.get("same_subject") or ()),
            subject_pattern=pattern,
        )

    def record_names(self) -> list[str]:
        """The folder's records (RECORDS order), downloaded first when the folder has none."""
        return ensure_database(self.root, self.download, self.physionet, f"data.catalog.{self.name}")

    def lead_for(self, default: Lead | Sequence[Lead]) -> Lead | tuple[Lead, ...]:
        """The lead(s) read from this database: its own ``lead``, else ``data.lead``."""
        return as_lead(default if self.lead is None else self.lead)

    def sources(self, names: Sequence[str], default_lead: Lead | Sequence[Lead]) -> list[RecordSource]:
        return record_sources(self.name, self.root, names, self.lead_for(default_lead), self.annotation)

    def subject_keys(self, names: Sequence[str], comments: Sequence[Sequence[str]]) -> list[str]:
        """Each record's subject, as ``<database>:<subject>``: from ``subject_pattern`` in its name or header
        comments, else its ``same_subject`` group (named by the group's first record), else the record itself."""
        group_of = {name: group[0] for group in self.same_subject for name in group}
        pattern = re.compile(self.subject_pattern) if self.subject_pattern else None
        keys = []
        for name, lines in zip(names, comments):  # one per record, never per beat
            match = next((m for m in map(pattern.search, [name, *lines]) if m), None) if pattern else None
            if match is not None:
                keys.append(f"{self.name}:subject {match.group(1) if match.groups() else match.group(0)}")
            else:
                keys.append(f"{self.name}:{group_of.get(name, name)}")
        return keys


def catalog_databases(
    names: Sequence[str], catalog: Mapping[str, Mapping[str, Any]], key: str = "data.databases"
) -> list[Database]:
    """The named databases of the catalog, checked."""
    missing = [str(n) for n in names if str(n) not in catalog]
    if missing:
        raise ConfigError(f"{key}: {missing} not in data.catalog; choose among {sorted(catalog)} or add them there")
    return [Database.from_config(str(n), catalog[str(n)]) for n in names]


def check_leads(databases: Sequence[Database], lead: Lead | Sequence[Lead]) -> None:
    """Every database must give as many input leads as ``data.lead`` (the model's input channels)."""
    want = len(lead_list(lead))
    for db in databases:
        got = len(lead_list(db.lead_for(lead)))
        if got != want:
            raise ConfigError(
                f"data.catalog.{db.name}.lead={db.lead} gives {got} lead(s) where data.lead={lead} gives {want}; "
                f"give it {want}"
            )


def configured_lead(data: Mapping[str, Any]) -> Lead | Sequence[Lead]:
    """The lead(s) a run's data config reads from its first training database (its own ``lead``, else
    ``data.lead``): what ``predict`` reads from a new recording by default."""
    catalog, names = data.get("catalog") or {}, data.get("databases") or ()
    if not names or names[0] not in catalog:  # the earlier one-folder config: data.lead only
        return data["lead"]
    return Database.from_config(names[0], catalog[names[0]]).lead_for(data["lead"])
