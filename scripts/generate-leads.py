#!/usr/bin/env python3
"""Realistic call-center leads (workflow cc_lead) as CSV, for imports and
benchmarks (docs/import.md, docs/benchmarks.md).

    python3 scripts/generate-leads.py 3000000 > leads.csv
    python3 scripts/generate-leads.py 50000 --duplicates 0.02 --broken 0.01 --seed 7 > leads.csv

Italian names, cities with their province and zone, mobile and landline
phones written the ways people write them (+39 347 123 4567, 0039...,
347 1234567, 06 1234567), e-mails in mixed case. A share of lines repeat
an earlier lead's phone or e-mail in another spelling (duplicates a
`--dedup phone,email` import skips) and a share are broken (a province
that is no code, a consumption that is no number, no first name, an
e-mail without a domain, a zone that does not exist, a short line).
The same seed gives the same file. Standard library only.
"""

import argparse
import random
import sys

FIRST = ("Marco Giulia Luca Francesca Alessandro Chiara Andrea Sara Matteo Valentina "
         "Lorenzo Martina Davide Elena Simone Federica Stefano Silvia Paolo Laura "
         "Giuseppe Anna Antonio Maria Giovanni Rosa Roberto Paola Franco Teresa").split()
LAST = ("Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno "
        "Gallo Conti DeLuca Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri "
        "Fontana Santoro Mariani Rinaldi Caruso Ferrara Galli Martini Leone").split()
# (city, province, zone)
PLACES = [
    ("Milano", "MI", "nord"), ("Torino", "TO", "nord"), ("Bergamo", "BG", "nord"),
    ("Brescia", "BS", "nord"), ("Verona", "VR", "nord"), ("Padova", "PD", "nord"),
    ("Venezia", "VE", "nord"), ("Bologna", "BO", "nord"), ("Genova", "GE", "nord"),
    ("Trento", "TN", "nord"), ("Roma", "RM", "centro"), ("Firenze", "FI", "centro"),
    ("Perugia", "PG", "centro"), ("Ancona", "AN", "centro"), ("Pisa", "PI", "centro"),
    ("Latina", "LT", "centro"), ("Napoli", "NA", "sud"), ("Bari", "BA", "sud"),
    ("Salerno", "SA", "sud"), ("Lecce", "LE", "sud"), ("Reggio Calabria", "RC", "sud"),
    ("Pescara", "PE", "sud"), ("Palermo", "PA", "isole"), ("Catania", "CT", "isole"),
    ("Cagliari", "CA", "isole"), ("Sassari", "SS", "isole"),
]
STREETS = "Roma Garibaldi Mazzini Dante Verdi Cavour Marconi Kennedy Manzoni Matteotti".split()
SOURCES = ["purchased_list", "purchased_list", "purchased_list", "web", "campaign", "referral"]
ROOFS = ["pitched", "pitched", "flat", "none", ""]
DOMAINS = ["gmail.com", "libero.it", "hotmail.it", "yahoo.it", "tiscali.it", "alice.it"]
HEADER = ["first_name", "last_name", "phone", "email", "address", "city", "province",
          "zone", "source", "roof_type", "annual_kwh", "interest_kw", "notes"]


def spell_phone(rng, digits):
    """One number, written as people write it."""
    style = rng.randrange(5)
    if style == 0:
        return "+39 %s %s %s" % (digits[:3], digits[3:6], digits[6:])
    if style == 1:
        return "0039" + digits
    if style == 2:
        return "%s %s" % (digits[:3], digits[3:])
    if style == 3:
        return "+39" + digits
    return digits


def quote(cell):
    if any(c in cell for c in ',"\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rows", type=int)
    ap.add_argument("--duplicates", type=float, default=0.02, help="share of lines repeating an earlier lead (default 0.02)")
    ap.add_argument("--broken", type=float, default=0.01, help="share of broken lines (default 0.01)")
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = sys.stdout
    out.write(",".join(HEADER) + "\n")
    recent = []  # (phone digits, email) of recent leads, for duplicates
    buf = []
    for i in range(a.rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, prov, zone = rng.choice(PLACES)
        digits = "3%02d%07d" % (rng.randrange(20, 99), i % 10_000_000)
        if rng.random() < 0.15:
            digits = "0%d%07d" % (rng.randrange(2, 99), i % 10_000_000)
        email = "%s.%s%d@%s" % (first.lower(), last.lower(), i, rng.choice(DOMAINS))
        r = rng.random()
        if recent and r < a.duplicates:
            digits, email = rng.choice(recent)
            if rng.random() < 0.5:
                email = email.upper()
        elif len(recent) < 1000:
            recent.append((digits, email))
        elif rng.random() < 0.01:
            recent[rng.randrange(1000)] = (digits, email)
        kwh = str(rng.randrange(1500, 9000)) if rng.random() < 0.7 else ""
        kw = ("%d,%d" % (rng.randrange(2, 12), rng.randrange(10))) if rng.random() < 0.5 else ""
        row = [first, last, spell_phone(rng, digits), email if rng.random() < 0.8 else "",
               "Via %s %d" % (rng.choice(STREETS), rng.randrange(1, 200)), city, prov, zone,
               rng.choice(SOURCES), rng.choice(ROOFS), kwh, kw,
               "richiamare, dopo le 18" if rng.random() < 0.05 else ""]
        b = rng.random()
        if b < a.broken:
            kind = rng.randrange(6)
            if kind == 0:
                row[6] = city            # E_PATTERN: a city for a province code
            elif kind == 1:
                row[10] = "tanti"        # E_TYPE: no number
            elif kind == 2:
                row[0] = ""              # E_REQUIRED: no first name
            elif kind == 3:
                row[3] = "senza-dominio@"  # E_PATTERN
            elif kind == 4:
                row[7] = "est"           # E_TYPE: no such zone
            else:
                row = row[:5]            # a short line
        buf.append(",".join(quote(c) for c in row))
        if len(buf) >= 10000:
            out.write("\n".join(buf) + "\n")
            buf.clear()
    if buf:
        out.write("\n".join(buf) + "\n")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(141)
