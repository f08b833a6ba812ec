"""The benchmark's users: one list, written in the form each system and SIPp reads.

Users are <first_extension + n> with password "<password_prefix><extension>", the same
rule as tongdai's `[demo]` config section, so every system holds the same accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class UserSet:
    first_extension: int
    count: int
    password_prefix: str
    realm: str  # also the SIP domain of the AoRs: sip:<user>@<realm>

    def users(self):
        for ext in range(self.first_extension, self.first_extension + self.count):
            yield str(ext), f"{self.password_prefix}{ext}"

    def write_sipp_csv(self, path: Path, source_ips: int) -> None:
        """user;password;domain;[authentication ...];source IP — see scenarios/register_auth.xml.

        User n sends from 127.0.0.(2 + n % source_ips), or 127.0.0.1 when source_ips is 1.
        """
        if not 1 <= source_ips <= 250:
            raise ValueError("source_ips must be in 1..250")
        with open(path, "w") as f:
            f.write("SEQUENTIAL\n")
            for n, (user, password) in enumerate(self.users()):
                ip = "127.0.0.1" if source_ips == 1 else f"127.0.0.{2 + n % source_ips}"
                f.write(f"{user};{password};{self.realm};"
                        f"[authentication username={user} password={password}];{ip}\n")

    def write_kamailio_htable(self, db_dir: Path, table: str = "users") -> None:
        """A db_text table in the layout the htable module loads at startup."""
        db_dir.mkdir(parents=True, exist_ok=True)
        with open(db_dir / table, "w") as f:
            f.write("id(int,auto) key_name(str) key_type(int) value_type(int) key_value(str) expires(int)\n")
            for i, (user, password) in enumerate(self.users(), start=1):
                f.write(f"{i}:{user}:0:0:{password}:0\n")

    def tongdai_demo_toml(self) -> str:
        return (
            "[demo]\n"
            f'realm = "{self.realm}"\n'
            f"first_extension = {self.first_extension}\n"
            f"count = {self.count}\n"
            f'password_prefix = "{self.password_prefix}"\n'
        )
