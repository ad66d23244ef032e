"""OpenAI Admin API pages -> provider lines: `/v1/organization/usage/*` and `/v1/organization/costs`.

A page is `{"object": "page", "data": [buckets], "has_more", "next_page"}`; a bucket is
`{"object": "bucket", "start_time", "end_time", "results": [...]}` (Unix seconds, end exclusive).
Each result's `object` names its endpoint (`organization.usage.completions.result`, ...,
`organization.costs.result`). Token arithmetic (docs/reconciliation.md has the table):

- Completions, current schema (any of input_text_tokens, input_uncached_tokens,
  input_cache_write_tokens, input_cached_text_tokens, output_text_tokens ... present): input_tokens
  counts every modality including cached and cache-write tokens; the text parts are input_text_tokens
  (uncached, without cache writes), input_cached_text_tokens and input_cache_write_tokens; audio and
  image tokens become units (uncached and cached apart). Each identity is checked.
- Completions, earlier schema: input_tokens counts text input *including* cached tokens, so
  input = input_tokens - input_cached_tokens; input_audio_tokens (cached audio included) and
  output_audio_tokens are units beside the text counts.
- Reasoning tokens are not reported apart: they are inside output (`folded`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date

from genai_meter.money import to_pico
from genai_meter.reconcile.coverage import DayTiles, bucket_results
from genai_meter.reconcile.fields import Node, count, label
from genai_meter.reconcile.lines import ProviderLine, Source, units_of
from genai_meter.reconcile.models import model_key

PROVIDER = "openai"
# result object -> the kind of the page (and the endpoint it comes from)
KINDS: dict[str, str] = {
    "organization.usage.completions.result": "openai.usage.completions",
    "organization.usage.embeddings.result": "openai.usage.embeddings",
    "organization.usage.moderations.result": "openai.usage.moderations",
    "organization.usage.images.result": "openai.usage.images",
    "organization.usage.audio_speeches.result": "openai.usage.audio_speeches",
    "organization.usage.audio_transcriptions.result": "openai.usage.audio_transcriptions",
    "organization.usage.web_searches.result": "openai.usage.web_searches",
    "organization.costs.result": "openai.costs",
}
OBJECTS = {kind: obj for obj, kind in KINDS.items()}
_CURRENT = ("input_text_tokens", "input_uncached_tokens", "input_cache_write_tokens", "input_cached_text_tokens",
            "input_cached_audio_tokens", "input_cached_image_tokens", "input_image_tokens", "output_text_tokens",
            "output_image_tokens")


def is_page(node: Node) -> bool:
    """An OpenAI page: `object: page` with buckets keyed by Unix start_time."""
    value = node.value
    return isinstance(value, dict) and value.get("object") == "page"


def page_kind(page: Node) -> str | None:
    """The kind named by the first result's `object`; None for a page without results."""
    for bucket in page.req("data").items():
        for result in bucket.req("results").items():
            obj = result.req("object").text()
            if obj not in KINDS:
                raise result.req("object").fail(f"unknown OpenAI result object {obj!r} "
                                                f"(known: {', '.join(sorted(KINDS))})")
            return KINDS[obj]
    return None


def read_page(page: Node, kind: str, source: Source, tiles: DayTiles) -> list[ProviderLine]:
    """The lines of one page of `kind`; its buckets go to `tiles`."""
    parse = _PARSERS[kind]
    lines: list[ProviderLine] = []
    for day, result in bucket_results(page, PROVIDER, kind, tiles, unix=True):
        obj = result.req("object")
        if obj.text() != OBJECTS[kind]:
            raise obj.fail(f"expected {OBJECTS[kind]!r} like the rest of the file, got {obj.value!r}")
        lines.append(parse(result, day, source))
    return lines


def _line(result: Node, day: date, source: Source) -> ProviderLine:
    """A line with the result's grouping labels (model, project, API key, service tier, batch) and no figures."""
    model = label(result, "model")
    tier = label(result, "service_tier").lower()
    batch = result.opt("batch")
    return ProviderLine(day=day, provider=PROVIDER, model=model, model_key=model_key(PROVIDER, model), source=source,
                        project=label(result, "project_id"), api_key_id=label(result, "api_key_id"),
                        service_tier="default" if tier in ("auto", "standard") else tier,
                        batch=None if batch is None else batch.flag())


def _part(result: Node, whole: int, whole_key: str, parts: dict[str, int]) -> int:
    """`whole` less `parts`; an error naming the fields when the parts exceed it."""
    rest = whole - sum(parts.values())
    if rest < 0:
        named = " + ".join(f"{k} ({v})" for k, v in parts.items() if v)
        raise result.fail(f"inconsistent counts: {named} exceed {whole_key} ({whole})")
    return rest


def _completions(result: Node, day: date, source: Source) -> ProviderLine:
    total_in, total_out = result.req("input_tokens").integer(), result.req("output_tokens").integer()
    cached = count(result, "input_cached_tokens")
    audio_in, audio_out = count(result, "input_audio_tokens"), count(result, "output_audio_tokens")
    if not any(result.has(key) for key in _CURRENT):  # the earlier schema: text counts, audio beside them
        units = {"input_audio_tokens": audio_in, "output_audio_tokens": audio_out}
        uncached = _part(result, total_in, "input_tokens", {"input_cached_tokens": cached})
        return replace(_line(result, day, source), requests=result.req("num_model_requests").integer(), input=uncached,
                     cache_read=cached, output=total_out, folded=("reasoning",), units=units_of(units))
    write = count(result, "input_cache_write_tokens")
    cached_audio, cached_image = count(result, "input_cached_audio_tokens"), count(result, "input_cached_image_tokens")
    image_in, image_out = count(result, "input_image_tokens"), count(result, "output_image_tokens")
    uncached_all = _part(result, total_in, "input_tokens", {"input_cached_tokens": cached,
                                                              "input_cache_write_tokens": write})
    if result.has("input_uncached_tokens") and result.req("input_uncached_tokens").integer() != uncached_all:
        raise result.fail(f"inconsistent counts: input_uncached_tokens ({result.req('input_uncached_tokens').value}) "
                          f"is not input_tokens - input_cached_tokens - input_cache_write_tokens ({uncached_all})")
    cached_text = _part(result, cached, "input_cached_tokens", {"input_cached_audio_tokens": cached_audio,
                                                                 "input_cached_image_tokens": cached_image})
    if result.has("input_cached_text_tokens") and result.req("input_cached_text_tokens").integer() != cached_text:
        raise result.fail("inconsistent counts: input_cached_text_tokens + input_cached_audio_tokens + "
                          "input_cached_image_tokens is not input_cached_tokens")
    text_in = _part(result, uncached_all, "the uncached input", {"input_audio_tokens": audio_in,
                                                                  "input_image_tokens": image_in})
    if result.has("input_text_tokens") and result.req("input_text_tokens").integer() != text_in:
        raise result.fail("inconsistent counts: input_text_tokens + input_audio_tokens + input_image_tokens is not "
                          "input_tokens - input_cached_tokens - input_cache_write_tokens")
    text_out = _part(result, total_out, "output_tokens", {"output_audio_tokens": audio_out,
                                                          "output_image_tokens": image_out})
    if result.has("output_text_tokens") and result.req("output_text_tokens").integer() != text_out:
        raise result.fail("inconsistent counts: output_text_tokens + output_audio_tokens + output_image_tokens is "
                          "not output_tokens")
    units = {"input_audio_tokens": audio_in, "cache_audio_read_tokens": cached_audio, "input_image_tokens": image_in,
             "cache_image_read_tokens": cached_image, "output_audio_tokens": audio_out,
             "output_image_tokens": image_out}
    return replace(_line(result, day, source), requests=result.req("num_model_requests").integer(), input=text_in,
                 cache_read=cached_text, cache_write=write, output=text_out, folded=("reasoning",),
                 units=units_of(units))


def _text_input(result: Node, day: date, source: Source) -> ProviderLine:  # embeddings, moderations
    return replace(_line(result, day, source), requests=result.req("num_model_requests").integer(),
                 input=result.req("input_tokens").integer())


def _units(key: str, field: str, requests: str = "num_model_requests",
           item: tuple[str, ...] = ()) -> Callable[[Node, date, Source], ProviderLine]:
    def parse(result: Node, day: date, source: Source) -> ProviderLine:
        line_item = ", ".join(value for name in item if (value := label(result, name)))
        return replace(_line(result, day, source), requests=result.req(requests).integer(), line_item=line_item,
                     units=units_of({key: result.req(field).integer()}))
    return parse


def _costs(result: Node, day: date, source: Source) -> ProviderLine:
    """`amount.value` in units of `amount.currency` (lowercase ISO 4217). The model is read from the
    line item where it has the form "MODEL, WHAT" (gpt-4o-2024-08-06, input); else none."""
    amount = result.req("amount")
    value = amount.req("value").amount()
    currency = amount.req("currency").text().upper()
    item = label(result, "line_item")
    model = item.split(", ", 1)[0].strip() if ", " in item else ""
    return ProviderLine(day=day, provider=PROVIDER, model=model, model_key=model_key(PROVIDER, model), source=source,
                        project=label(result, "project_id"), api_key_id=label(result, "api_key_id"), line_item=item,
                        cost_pico=to_pico(value), currency=currency)


_PARSERS: dict[str, Callable[[Node, date, Source], ProviderLine]] = {
    "openai.usage.completions": _completions,
    "openai.usage.embeddings": _text_input,
    "openai.usage.moderations": _text_input,
    "openai.usage.images": _units("custom.images", "images", item=("size", "source")),
    "openai.usage.audio_speeches": _units("input_characters", "characters"),
    "openai.usage.audio_transcriptions": _units("input_audio_seconds", "seconds"),
    "openai.usage.web_searches": _units("web_searches", "num_requests", item=("context_level",)),
}
_PARSERS["openai.costs"] = _costs
