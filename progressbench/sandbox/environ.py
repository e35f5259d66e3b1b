"""The environment variables a worker and its candidates see: an allow-list, minus anything
named like a credential.

Its own module because the rule is security-relevant and small enough to audit at a glance;
the ``local`` evaluator applies it once, to the environment it hands every worker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# An allow-list, not a deny-list: a secret under a name nobody thought of stays out.
ALLOWED_ENV = frozenset(
    {
        "PATH", "LANG", "LANGUAGE", "TZ", "TERM",
        "PYTHONPATH", "PYTHONHASHSEED", "PYTHONWARNINGS", "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
        "LD_LIBRARY_PATH", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
        "TORCH_CUDA_ARCH_LIST", "PYTORCH_CUDA_ALLOC_CONF",
        # Which plugins load, and where fetched data lives: both sides must agree on them.
        "PROGRESSBENCH_LOAD_PLUGINS", "PROGRESSBENCH_DATA",
    }
)  # fmt: skip
ALLOWED_ENV_PREFIXES = ("LC_", "CUDA_", "TRITON_", "NCCL_", "TORCHINDUCTOR_")
# Applied on top of the allow-list (and to names a user passes explicitly): credentials
# never pass, whatever the prefix.
SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|CERT"
    r"|DSN|DATABASE|_URL$|_URI$|^AWS_|^AZURE_|^GOOGLE_|^GCP_"
)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name.upper()))


def scrubbed_environ(source: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """The variables of ``source`` a sandbox may see: the allow-list plus ``extra`` names,
    minus anything named like a credential."""
    wanted = set(extra)
    return {
        name: value
        for name, value in source.items()
        if (name in ALLOWED_ENV or name.startswith(ALLOWED_ENV_PREFIXES) or name in wanted)
        and not is_secret_name(name)
    }
