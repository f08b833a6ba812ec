#!/usr/bin/env python3
"""Generates the built-in voice prompts (queue announcements) with espeak-ng.

    apt-get install -y espeak-ng && python3 node/prompts/generate.py

Writes node/prompts/<lang>/<name>.ulaw (lang: en, vi): 8 kHz G.711 u-law, mono, no header, each
trimmed of leading and trailing silence. The node embeds them (node/src/b2bua/announce.rs).
Re-running gives the same files for the same espeak-ng version; the files are committed so
building tongdai needs no speech synthesizer.
"""

import math
import struct
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORDS_EN = {
    "caller_number": "You are caller number",
    "wait_about": "Your expected wait is about",
    "minute": "minute",
    "minutes": "minutes",
    "under_a_minute": "Your expected wait is less than a minute",
    "press_for_callback": "To hang up and be called back, keeping your place, press",
    "hundred": "hundred",
    "star": "star",
    "pound": "pound",
}
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
        "seventeen", "eighteen", "nineteen"]
TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy",
        80: "eighty", 90: "ninety"}
for n, word in enumerate(ONES):
    WORDS_EN[f"n{n}"] = word
for n, word in TENS.items():
    WORDS_EN[f"n{n}"] = word

# Vietnamese: numbers are built from digits and a few joining words (see announce.rs).
WORDS_VI = {
    "caller_number": "Quý khách là người gọi thứ",
    "wait_about": "Thời gian chờ dự kiến khoảng",
    "minutes": "phút",
    "under_a_minute": "Thời gian chờ dự kiến dưới một phút",
    "press_for_callback": "Để được gọi lại mà vẫn giữ chỗ, xin nhấn phím",
    "muoi_ten": "mười",
    "muoi": "mươi",
    "mot": "mốt",
    "lam": "lăm",
    "tu": "tư",
    "tram": "trăm",
    "le": "lẻ",
    "star": "sao",
    "pound": "thăng",
}
for n, word in enumerate(["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]):
    WORDS_VI[f"n{n}"] = word

LANGS = {"en": ("en-us", 150, WORDS_EN), "vi": ("vi", 140, WORDS_VI)}

RATE = 8000
TAPS = 32  # half-width of the windowed-sinc low-pass


def synth(voice: str, speed: int, text: str) -> tuple[int, list[int]]:
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", f.name, text], check=True)
        with wave.open(f.name) as w:
            assert w.getnchannels() == 1 and w.getsampwidth() == 2
            rate = w.getframerate()
            raw = w.readframes(w.getnframes())
    return rate, list(struct.unpack(f"<{len(raw) // 2}h", raw))


def resample(rate: int, x: list[int]) -> list[float]:
    """Windowed-sinc (Blackman) resampling to 8 kHz, cut-off just under 4 kHz."""
    ratio = rate / RATE
    cutoff = 0.9 * min(1.0, RATE / rate)
    out = []
    for i in range(int(len(x) / ratio)):
        center = i * ratio
        lo, hi = int(center) - TAPS, int(center) + TAPS
        acc = 0.0
        for j in range(max(lo, 0), min(hi, len(x) - 1) + 1):
            t = j - center
            sinc = cutoff if t == 0 else math.sin(math.pi * cutoff * t) / (math.pi * t)
            win = 0.42 + 0.5 * math.cos(math.pi * t / TAPS) + 0.08 * math.cos(2 * math.pi * t / TAPS)
            acc += x[j] * sinc * max(win, 0.0)
        out.append(acc)
    return out


def trim(x: list[float], threshold: float = 300.0) -> list[float]:
    loud = [i for i, s in enumerate(x) if abs(s) > threshold]
    if not loud:
        return x
    return x[max(loud[0] - 40, 0): loud[-1] + 40]


def ulaw(sample: float) -> int:
    s = max(-32635, min(32635, int(sample)))
    sign = 0x80 if s < 0 else 0
    s = abs(s) + 0x84
    exponent, mask = 7, 0x4000
    while exponent > 0 and not s & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (s >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def main() -> int:
    for lang, (voice, speed, words) in LANGS.items():
        out_dir = HERE / lang
        out_dir.mkdir(exist_ok=True)
        for name, text in sorted(words.items()):
            rate, samples = synth(voice, speed, text)
            audio = trim(resample(rate, samples))
            (out_dir / f"{name}.ulaw").write_bytes(bytes(ulaw(s) for s in audio))
            print(f"{lang}/{name}: {len(audio) / RATE:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
