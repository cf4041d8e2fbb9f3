"""Dagster pull assets: each feed with a public publisher gets one asset that downloads its new files from the
publisher's pages into the landing folder (``COLLAB_SOURCES_DIR/<feed>/``), upstream of the feed's raw asset.

The work is :func:`orchestration.pull.pull_source`'s, configured by :class:`PublishersResource`; this module only
puts it in the asset graph. A feed's schedule runs its pull asset and its raw asset in one run over the
partition window the pull keeps current (:func:`pull_window`), so what lands is ingested in the same run; files
a run landed are marked in their sidecar, so the landing-folder sensor (for files dropped by hand) leaves them to
it.
"""

from datetime import UTC, date, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    asset,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration.pull import LABELS, pull_source
from orchestration.resources import BUNDLED_SAMPLES_DIR, PublishersResource, WarehouseResource
from orchestration.sources.feeds import FEEDS, Feed

#: A month is published this many months after it ends, at most (RTT: the second Thursday of the month after
#: next); the window a scheduled pull covers reaches this far back beyond the months it keeps current.
PUBLICATION_LAG_MONTHS = 3


def pull_asset_key(feed: Feed) -> AssetKey:
    return AssetKey([feed.name, "published_files"])


def pull_check_name(feed: Feed) -> str:
    return f"{feed.name}_pull_complete"


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def pull_window(partitions: MonthlyPartitionsDefinition, now: datetime, months: int) -> tuple[date, date]:
    """The first and last monthly partition (both included) a pull at ``now`` keeps current: the last complete
    month (the last partition of a monthly definition with no end offset) back over ``months`` months plus the
    publication lag, never before the first partition."""
    current = now.astimezone(UTC).date().replace(day=1)
    last = _add_months(current, -1)
    first = max(_add_months(last, -(months + PUBLICATION_LAG_MONTHS)), partitions.start.date())
    return first, last


def _run_window(context: AssetExecutionContext) -> tuple[date, date] | None:
    """The run's partition range as ``[start, end)`` months, when it has one (a scheduled pull and ingest)."""
    tags = context.run.tags
    if ASSET_PARTITION_RANGE_START_TAG not in tags or ASSET_PARTITION_RANGE_END_TAG not in tags:
        return None
    start = date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG][:10])
    last = date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG][:10])
    return start.replace(day=1), _add_months(last.replace(day=1), 1)


def build_pull_asset(feed: Feed) -> AssetsDefinition:
    """The asset that keeps ``feed``'s landing folder current from its publisher, with a check that nothing failed."""
    assert feed.pull_source is not None, f"{feed.name} has no publisher to pull from"
    source = feed.pull_source
    key = pull_asset_key(feed)
    check = pull_check_name(feed)

    @asset(
        key=key,
        group_name=feed.name,
        kinds={"python"},
        check_specs=[
            AssetCheckSpec(
                check,
                asset=key,
                description=(
                    f"Every {feed.title} file linked from the publisher's pages was downloaded or is unchanged, "
                    "and every page looked as expected. Not blocking: the months that did land still load; a "
                    "failure names the file or page and why."
                ),
            )
        ],
        description=(
            f"{feed.title} files downloaded from {LABELS[source]}'s publisher pages into the landing folder "
            f"(COLLAB_SOURCES_DIR/{feed.name}/): the newest months (PublishersResource.months) found by following "
            "the index page's links, with conditional requests, so only new or republished files are fetched. "
            "A page whose layout changed fails the run, naming the page."
        ),
    )
    def published_files(
        context: AssetExecutionContext, warehouse: WarehouseResource, publishers: PublishersResource
    ) -> MaterializeResult:
        if warehouse.sources_path.resolve() == BUNDLED_SAMPLES_DIR.resolve():
            raise Failure(
                description=(
                    f"COLLAB_SOURCES_DIR is the bundled samples ({warehouse.sources_path}): a pull would write the "
                    "publisher's files among them. Set COLLAB_SOURCES_DIR to a landing folder of its own."
                )
            )
        window = _run_window(context)
        results = pull_source(
            source, warehouse.sources_path, publishers=publishers, within=window, landed_by_run=context.run_id
        )
        for result in results:
            (context.log.error if result.status == "failed" else context.log.info)(result.message)
        failed = [result for result in results if result.status == "failed"]
        downloaded = [result for result in results if result.status == "downloaded"]
        if failed and not downloaded:
            raise Failure(
                description=f"{feed.title}: nothing was downloaded and {len(failed)} failed:\n"
                + "\n".join(result.message for result in failed),
                metadata={"failures": MetadataValue.json([result.message for result in failed])},
            )
        counts: dict[str, int] = {}
        for result in results:
            counts[result.status] = counts.get(result.status, 0) + 1
        return MaterializeResult(
            metadata={
                "landing_folder": MetadataValue.path(str(warehouse.source_folder(feed.name))),
                "window": MetadataValue.text(
                    f"{window[0]:%Y-%m} to {_add_months(window[1], -1):%Y-%m}" if window else "newest months"
                ),
                **{f"files_{status}": count for status, count in sorted(counts.items())},
                "months_downloaded": MetadataValue.json(sorted({f"{r.month:%Y-%m}" for r in downloaded if r.month})),
                "files": MetadataValue.json(
                    [
                        {"file": result.path.name, "status": result.status, "url": result.url, "page": result.page}
                        for result in results
                    ]
                ),
            },
            check_results=[
                AssetCheckResult(
                    check_name=check,
                    passed=not failed,
                    severity=AssetCheckSeverity.ERROR,
                    metadata={"failures": MetadataValue.json([result.message for result in failed])},
                )
            ],
        )

    return published_files


#: One pull asset per feed with a publisher (RTT, out-of-area placements).
PULL_ASSETS: dict[str, AssetsDefinition] = {feed.name: build_pull_asset(feed) for feed in FEEDS if feed.pull_source}
