"""Deterministic Gecko-shaped full task graphs, for benchmarks, tests and the local demo push.

The shapes follow Gecko's own graphs: ``docker-image-*`` chains, ``fetch-*``,
``toolchain-*`` depending on both, ``build-<platform>/<type>`` on toolchains, and
``test-<test-platform>/<type>-<suite>[-<variant>]-<chunk>`` on their build, with Treeherder
symbols such as ``M(bc3)``, try attributes (``unittest_try_name``, ``test_chunk``, ...) and
task bodies of Gecko's density (about 5 KB) that use ``task-reference``,
``artifact-reference`` and ``relative-datestamp`` the way taskgraph writes them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from bot.graph.index import TaskGraphIndex
from bot.graph.plan import plan, task_id_for

# (build platform, test platform, Treeherder machine platform of tests, build types)
PLATFORMS = (
    ("linux64", "linux1804-64-qr", "linux1804-64-qr", ("opt", "debug")),
    ("linux64-asan", "linux1804-64-asan-qr", "linux1804-64-asan-qr", ("opt",)),
    ("linux64-tsan", "linux1804-64-tsan-qr", "linux1804-64-tsan-qr", ("opt",)),
    ("linux64-shippable", "linux1804-64-shippable-qr", "linux1804-64-shippable-qr", ("opt",)),
    ("linux64-ccov", "linux1804-64-ccov-qr", "linux1804-64-ccov-qr", ("opt",)),
    ("win64", "windows11-64-2009-qr", "windows11-64-2009-qr", ("opt", "debug")),
    (
        "win64-shippable",
        "windows11-64-2009-shippable-qr",
        "windows11-64-2009-shippable-qr",
        ("opt",),
    ),
    ("win32", "windows11-32-2009-qr", "windows11-32-2009-qr", ("opt", "debug")),
    ("macosx64", "macosx1015-64-qr", "macosx1015-64-qr", ("opt", "debug")),
    ("macosx64-shippable", "macosx1015-64-shippable-qr", "macosx1015-64-shippable-qr", ("opt",)),
    ("android-x86_64", "android-em-7.0-x86_64-qr", "android-em-7-0-x86_64-qr", ("opt", "debug")),
)
# (try name, Treeherder group, symbol prefix, chunks)
SUITES = (
    ("mochitest-browser-chrome", "M", "bc", 16),
    ("mochitest-plain", "M", "", 16),
    ("mochitest-devtools-chrome", "M", "dt", 12),
    ("mochitest-chrome", "M", "c", 3),
    ("mochitest-a11y", "M", "a11y", 1),
    ("mochitest-media", "M", "mda", 3),
    ("mochitest-webgl1-core", "M", "gl1c", 1),
    ("mochitest-webgl2-ext", "M", "gl2e", 4),
    ("reftest", "R", "R", 8),
    ("crashtest", "R", "C", 2),
    ("jsreftest", "R", "J", 4),
    ("xpcshell", "X", "X", 8),
    ("web-platform-tests", "W", "wpt", 16),
    ("web-platform-tests-reftest", "W", "Wr", 6),
    ("web-platform-tests-wdspec", "W", "Wd", 3),
    ("gtest", None, "GTest", 1),
    ("cppunittest", None, "Cpp", 1),
    ("marionette", None, "Mn", 1),
    ("firefox-ui-functional", "Fxfn", "en-US", 1),
    ("jittest", "Jit", "Jit", 6),
)
# (label suffix, group suffix, run by default)
VARIANTS = (
    ("", "", True),
    ("-spi-nw", "-spi", False),
    ("-swr", "-swr", False),
    ("-nofis", "-nofis", False),
)
DOCKER_IMAGES = (
    "image_builder",
    "ubuntu1804-base",
    "ubuntu1804-test-base",
    "ubuntu1804-test",
    "ubuntu1804-build",
    "debian12-base",
    "debian12-amd64-build",
    "debian12-packages",
    "custom-v8",
    "deb12-toolchain-build",
    "android-build",
    "lint",
    "fetch",
    "valgrind-build",
    "static-analysis-build",
    "diffoscope",
    "partner-repack",
    "update-verify",
    "periodic-updates",
    "condprof",
)


@dataclass(frozen=True, slots=True)
class SyntheticPush:
    """A generated push: its full task graph and the tasks it already ran."""

    graph: dict[str, dict[str, Any]]
    label_to_taskid: dict[str, str]


# The push a generated graph is for: its tasks name its revision (GECKO_HEAD_REV, routes,
# links) and pushlog id, as a decision task writes them; ``at_push`` moves a graph to another.
BASE_REVISION = "5" * 40
BASE_PUSHLOG_ID = 100000


def at_push(graph: bytes, revision: str, pushlog_id: int) -> bytes:
    """``graph`` (a generated full-task-graph.json) as the decision task of the push
    ``revision`` (``pushlog_id``) would write it: the same tasks, naming that push."""
    if len(revision) != len(BASE_REVISION):
        raise ValueError(f"a revision has {len(BASE_REVISION)} hex digits: {revision!r}")
    route = f"{BASE_REVISION}.{BASE_PUSHLOG_ID}".encode()
    moved = graph.replace(route, f"{revision}.{pushlog_id}".encode())
    return moved.replace(BASE_REVISION.encode(), revision.encode())


def _body(
    rng: random.Random,
    label: str,
    *,
    kind: str,
    symbol: str,
    group: str | None,
    machine: str,
    build_type: str,
    image_edge: str | None,
    extra_env: dict[str, Any],
    tier: int = 1,
) -> dict[str, Any]:
    # Draws once made for per-task revisions, kept so that every other choice stays as it was.
    rng.getrandbits(160)
    env = {
        "MOZ_AUTOMATION": "1",
        "MOZ_SCM_LEVEL": "3",
        "GECKO_BASE_REPOSITORY": "https://hg.mozilla.org/mozilla-unified",
        "GECKO_HEAD_REPOSITORY": "https://hg.mozilla.org/integration/autoland",
        "GECKO_HEAD_REV": BASE_REVISION,
        "MOZHARNESS_CONFIG": "unittests/linux_unittest.py remove_executables.py",
        "MOZHARNESS_SCRIPT": "desktop_unittest.py",
        "NEED_PULSEAUDIO": "true",
        "NEED_WINDOW_MANAGER": "true",
        "SCCACHE_GCS_KEY_PATH": "/builds/worker/sccache.json",
        "TOOLTOOL_CACHE": "/builds/worker/tooltool-cache",
        "WORKSPACE": "/builds/worker/workspace",
        "TASKCLUSTER_CACHES": "/builds/worker/checkouts;/builds/worker/tooltool-cache",
        "TASKCLUSTER_VOLUMES": ";".join(
            f"/builds/worker/{d}" for d in (".cache", "checkouts", "workspace")
        ),
        **extra_env,
    }
    treeherder: dict[str, Any] = {
        "collection": {build_type: True},
        "jobKind": "test" if kind == "test" else "build",
        "machine": {"platform": machine},
        "symbol": symbol,
        "tier": tier,
    }
    if group:
        treeherder["groupSymbol"] = group
        treeherder["groupName"] = f"{group} tests"
    payload: dict[str, Any] = {
        "artifacts": {
            "public/logs": {
                "expires": {"relative-datestamp": "1 year"},
                "path": "/builds/worker/logs",
                "type": "directory",
            },
            "public/test_info": {
                "expires": {"relative-datestamp": "1 year"},
                "path": "/builds/worker/workspace/build/blobber_upload_dir",
                "type": "directory",
            },
        },
        "cache": {
            f"gecko-level-3-checkouts-v3-{rng.getrandbits(64):016x}": "/builds/worker/checkouts"
        },
        "command": [
            "/builds/worker/bin/run-task",
            "--fetch-hgfingerprint",
            "--",
            "/builds/worker/bin/test-linux.sh",
            "--installer-url=$GECKO_INSTALLER_URL --test-packages-url=$TEST_PACKAGES_URL",
            f"--{label.rsplit('-', 1)[0]}",
            "--download-symbols=ondemand",
            "--allow-software-gl-layers",
        ],
        "env": env,
        "features": {"taskclusterProxy": True},
        "maxRunTime": rng.choice((3600, 5400, 7200)),
        "onExitStatus": {"retry": [4, 137]},
        "mounts": [
            {
                "content": {"url": f"https://example.invalid/tooltool/{rng.getrandbits(256):064x}"},
                "file": f"/builds/worker/fetches/tool-{n}.tar.zst",
            }
            for n in range(4)
        ],
        "supersederUrl": None,
    }
    if image_edge:
        payload["image"] = {
            "path": "public/image.tar.zst",
            "taskId": {"task-reference": f"<{image_edge}>"},
            "type": "task-image",
        }
    rng.getrandbits(160), rng.randrange(200000), rng.getrandbits(160)
    return {
        "created": {"relative-datestamp": "0 seconds"},
        "deadline": {"relative-datestamp": "1 day"},
        "expires": {"relative-datestamp": "28 days"},
        "extra": {
            "index": {"rank": 0},
            "parent": "TBD",
            "treeherder": treeherder,
            "treeherder-platform": f"{machine}/{build_type}",
        },
        "metadata": {
            "description": f"{label} ([Treeherder push](https://treeherder.mozilla.org/#/jobs?repo=autoland&revision={BASE_REVISION}))",
            "name": label,
            "owner": "someone@example.com",
            "source": f"https://hg.mozilla.org/integration/autoland/file/{BASE_REVISION}/"
            f"taskcluster/kinds/{kind}",
        },
        "payload": payload,
        "priority": "low",
        "provisionerId": "gecko-t" if kind == "test" else "gecko-3",
        "workerType": "t-linux-large" if kind == "test" else "b-linux-gcp",
        "retries": 5,
        "routes": [
            f"tc-treeherder.v2.autoland.{BASE_REVISION}.{BASE_PUSHLOG_ID}",
            f"index.gecko.v2.autoland.revision.{BASE_REVISION}.{kind}." + label.replace("/", "-"),
            f"index.gecko.v2.autoland.latest.{kind}.{label.replace('/', '-')}",
        ],
        "scopes": [
            "secrets:get:project/taskcluster/gecko/hgfingerprint",
            "docker-worker:cache:gecko-level-3-checkouts-v3",
        ],
        "tags": {
            "createdForUser": "someone@example.com",
            "kind": kind,
            "label": label,
            "os": "linux",
            "worker-implementation": "docker-worker",
        },
    }


def generate(tasks: int = 40_000, *, seed: int = 1, already_run: float = 0.3) -> SyntheticPush:
    """About ``tasks`` tasks (never fewer than the support tasks); same seed, same graph."""
    rng = random.Random(seed)
    graph: dict[str, dict[str, Any]] = {}

    def add(
        label: str,
        kind: str,
        deps: dict[str, str],
        attributes: dict[str, Any],
        body: dict[str, Any],
    ) -> None:
        graph[label] = {
            "attributes": {
                "kind": kind,
                "run_on_projects": attributes.pop("run_on_projects", ["all"]),
                **attributes,
            },
            "dependencies": deps,
            "description": body["metadata"]["description"],
            "if_dependencies": [],
            "kind": kind,
            "label": label,
            "optimization": {"skip-unless-changed": ["taskcluster/kinds/" + kind]}
            if kind != "test"
            else None,
            "soft_dependencies": [],
            "task": body,
        }

    def support(
        label: str, kind: str, symbol: str, group: str, deps: dict[str, str], image: str | None
    ) -> None:
        env = {
            f"MOZ_FETCHES_{n}": {"task-reference": f"<{e}>"}
            for n, e in enumerate(deps)
            if e != image
        }
        add(
            label,
            kind,
            deps,
            {"build_platform": "linux64", "build_type": "opt"},
            _body(
                rng,
                label,
                kind=kind,
                symbol=symbol,
                group=group,
                machine="gecko-decision",
                build_type="opt",
                image_edge=image,
                extra_env=env,
            ),
        )

    images = [f"docker-image-{name}" for name in DOCKER_IMAGES]
    for n, label in enumerate(images):
        deps = {"parent": images[(n - 1) // 2]} if n else {}
        support(label, "docker-image", f"I{n}", "I", deps, None)
    fetches = [
        f"fetch-{tool}-{version}"
        for tool in (
            "clang",
            "gcc",
            "rust",
            "cmake",
            "ninja",
            "nasm",
            "node",
            "python",
            "wasi-sdk",
            "cbindgen",
        )
        for version in range(8)
    ]
    for label in fetches:
        support(
            label,
            "fetch",
            label.removeprefix("fetch-"),
            "Fetch",
            {"docker-image": images[12]},
            "docker-image",
        )
    toolchains = [
        f"toolchain-{p[0]}-{tool}-{n}"
        for p in PLATFORMS[::2]
        for tool in ("clang", "rust", "sccache", "cbindgen", "nasm")
        for n in range(6)
    ]
    for label in toolchains:
        deps = {"docker-image": images[rng.randrange(1, len(images))]}
        deps.update({f"fetch-{k}": f for k, f in enumerate(rng.sample(fetches, 3))})
        support(
            label, "toolchain", label.removeprefix("toolchain-")[:20], "TL", deps, "docker-image"
        )

    builds: list[tuple[str, str, str, str, str]] = []
    for build_platform, test_platform, machine, build_types in PLATFORMS:
        for build_type in build_types:
            label = f"build-{build_platform}/{build_type}"
            deps = {"docker-image": images[4]}
            deps.update({f"toolchain-{k}": t for k, t in enumerate(rng.sample(toolchains, 6))})
            env = {
                "MOZ_TOOLCHAINS": {
                    "task-reference": " ".join(f"<{e}>" for e in deps if e.startswith("toolchain"))
                }
            }
            add(
                label,
                "build",
                deps,
                {"build_platform": build_platform, "build_type": build_type},
                _body(
                    rng,
                    label,
                    kind="build",
                    symbol="B",
                    group=None,
                    machine=build_platform,
                    build_type=build_type,
                    image_edge="docker-image",
                    extra_env=env,
                ),
            )
            builds.append((label, build_platform, test_platform, machine, build_type))

    # Tests: cycle through platforms, suites, variants and chunks until the target count.
    combos = [(b, s, v) for b in builds for s in SUITES for v in VARIANTS]
    rng.shuffle(combos)
    total_chunks = sum(s[3] for _, s, _ in combos)
    repeat = max(1, -(-(tasks - len(graph)) // max(1, total_chunks)))
    for copy in range(repeat):
        for (
            build_label,
            build_platform,
            test_platform,
            machine,
            build_type,
        ), suite, variant in combos:
            try_name, group, prefix, chunks = suite
            variant_suffix, group_suffix, default = variant
            if copy:
                variant_suffix, group_suffix = (
                    f"{variant_suffix}-r{copy}",
                    f"{group_suffix}-r{copy}",
                )
            for chunk in range(1, chunks + 1):
                if len(graph) >= tasks:
                    break
                chunk_part = f"-{chunk}" if chunks > 1 else ""
                label = f"test-{test_platform}/{build_type}-{try_name}{variant_suffix}{chunk_part}"
                symbol = f"{prefix}{chunk}" if chunks > 1 else (prefix or "1")
                tgroup = f"{group}{group_suffix}" if group else None
                env = {
                    "GECKO_INSTALLER_URL": {
                        "artifact-reference": "<build/public/build/target.tar.bz2>"
                    },
                    "TEST_PACKAGES_URL": {
                        "artifact-reference": "<build/public/build/target.test_packages.json>"
                    },
                    "MOZ_BUILD_TASK": {"task-reference": "<build>"},
                }
                add(
                    label,
                    "test",
                    {"build": build_label, "docker-image": images[3]},
                    {
                        "build_platform": build_platform,
                        "build_type": build_type,
                        "test_platform": f"{test_platform}/{build_type}",
                        "unittest_try_name": try_name,
                        "unittest_suite": try_name.split("-")[0],
                        "unittest_variant": variant_suffix.lstrip("-") or None,
                        "test_chunk": str(chunk),
                        "total_chunks": chunks,
                        "retrigger": True,
                        "run_on_projects": ["all"] if default else ["mozilla-central"],
                    },
                    _body(
                        rng,
                        label,
                        kind="test",
                        symbol=symbol,
                        group=tgroup,
                        machine=machine,
                        build_type=build_type,
                        image_edge="docker-image",
                        extra_env=env,
                        tier=1 if default else 2,
                    ),
                )
    ran = {
        label: task_id_for(f"decision-{seed}", label)
        for label in graph
        if not label.startswith("test-") or rng.random() < already_run
    }
    return SyntheticPush(graph, ran)


def labels_planning(index: TaskGraphIndex, count: int, *, request_id: str = "r0") -> list[str]:
    """Test labels whose plan (with nothing run yet) creates exactly ``count`` tasks."""
    requested: list[str] = []
    created = 0
    for label in index.labels:
        if created == count:
            break
        if not label.startswith("test-"):
            continue
        attempt = plan(index, [*requested, label], {}, request_id=request_id).new_task_count
        if attempt <= count:
            requested.append(label)
            created = attempt
    if created != count:
        raise ValueError(f"no set of test labels plans exactly {count} tasks")
    return requested
