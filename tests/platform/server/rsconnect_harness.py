"""Real R with real rsconnect (Debian's r-cran-rsconnect 0.8.29) talking to a plumbline
server: addServer(), connectApiUser() with a plumbline API key, deployAPI() of a folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DEPLOY_R = r"""
args <- commandArgs(TRUE)
url <- args[[1]]; account <- args[[2]]; app_dir <- args[[3]]; app_name <- args[[4]]
# The R user's package repository (a test's local CRAN-like one): rsconnect records where
# each package came from in the bundle's manifest.json.
if (nzchar(Sys.getenv("PLUMBLINE_TEST_REPOS"))) {
  options(repos = c(LOCAL = Sys.getenv("PLUMBLINE_TEST_REPOS")))
}
if (!("plumbline" %in% rsconnect::servers()$name)) {
  rsconnect::addServer(paste0(url, "/__api__"), name = "plumbline")
  rsconnect::connectApiUser(account = account, server = "plumbline",
                            apiKey = Sys.getenv("PLUMBLINE_TEST_KEY"))
}
ok <- rsconnect::deployAPI(app_dir, server = "plumbline", account = account,
                           appName = app_name, launch.browser = FALSE, forceUpdate = TRUE)
if (!isTRUE(ok)) quit(status = 3)
"""


def deploy_api(
    home: Path,
    url: str,
    key: str,
    account: str,
    app_dir: Path,
    app_name: str,
    timeout: float = 600,
    *,
    repos: str = "",
    library: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run rsconnect as an R user would; its config lives under `home` (one user's machine).
    `repos`: the user's package repository; `library`: where the user installed packages."""
    home.mkdir(parents=True, exist_ok=True)
    script = home / "deploy.R"
    script.write_text(DEPLOY_R)
    env = {
        **os.environ,
        "HOME": str(home),
        "R_USER_CONFIG_DIR": str(home / ".config"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PLUMBLINE_TEST_KEY": key,
        "PLUMBLINE_TEST_REPOS": repos,
    }
    if library is not None:
        env["R_LIBS"] = str(library)
    return subprocess.run(
        ["Rscript", "--vanilla", str(script), url, account, str(app_dir), app_name],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
