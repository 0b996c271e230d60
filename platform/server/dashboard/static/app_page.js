// One app: its health and replicas, traffic charts, versions (activate, roll back, upload),
// tasks with their output as it streams, live logs, and who may call or change it.
// Buttons that change something are drawn only for those the API lets change it.

import { api, currentUser } from "./api.js";
import { lineChart } from "./charts.js";
import {
  ACCESS_TEXT, badge, bytes, clear, confirmAction, field, h, percent, rate, seconds, toast, when,
} from "./dom.js";
import { every, stillShown } from "./poll.js";

const TABS = [
  ["overview", "Overview"],
  ["traffic", "Traffic"],
  ["versions", "Versions"],
  ["tasks", "Tasks"],
  ["logs", "Logs"],
  ["access", "Access"],
];

export async function appPage(main, ref, tab, params) {
  let app;
  try {
    app = await api("GET", `/v1/apps/${encodeURIComponent(ref)}`);
  } catch (err) {
    clear(main, h("p", { class: "error" }, err.message), h("a", { href: "#/apps" }, "All apps"));
    return;
  }
  if (!TABS.some(([key]) => key === tab)) tab = "overview";
  const page = { app, tab, base: `#/apps/${app.id}` };
  const head = h("div", { class: "app-head" });
  const taskPanel = h("div", { id: "task-panel" });
  const content = h("section", { class: "tab-content", id: `tab-${tab}` });
  clear(main,
    h("nav", { class: "crumbs" }, h("a", { href: "#/apps" }, "Apps"), " / ", app.name),
    head, taskPanel,
    h("nav", { class: "tabs", "aria-label": "app" }, TABS.map(([key, label]) =>
      h("a", { href: `${page.base}/${key}`, "aria-current": key === tab ? "page" : null,
        dataset: { tab: key } }, label))),
    content);

  page.follow = (taskId) => { location.hash = `${page.base}/${tab}?task=${taskId}`; };
  const taskId = params.get("task");
  if (taskId) followTask(taskPanel, page, taskId);

  const status = { value: null };
  every(2000, async (stillHere) => {
    const [fresh, st] = await Promise.all([
      api("GET", `/v1/apps/${app.id}`),
      app.active_bundle_id ? api("GET", `/v1/apps/${app.id}/status`).catch((err) => ({
        error: err.message })) : Promise.resolve(null),
    ]);
    if (!stillHere()) return;
    Object.assign(app, fresh);
    status.value = st;
    renderHead(head, app, st);
    if (tab === "overview") renderOverview(content, page, st);
  });

  const tabs = { traffic, versions, tasks, logs, access };
  if (tabs[tab]) tabs[tab](content, page);
}

function renderHead(head, app, st) {
  const health = !app.active_bundle_id ? "not deployed" : st && !st.error ? st.health : "down";
  clear(head,
    h("div", { class: "title-row" },
      h("h1", {}, app.title), badge(health)),
    h("dl", { class: "facts" },
      h("div", {}, h("dt", {}, "URL"), h("dd", {}, h("a", { href: app.url, target: "_blank",
        rel: "noopener noreferrer", class: "url" }, app.url))),
      h("div", {}, h("dt", {}, "Owner"), h("dd", {}, app.owner_username)),
      h("div", {}, h("dt", {}, "Version"), h("dd", { id: "active-version" },
        app.active_bundle_id ? `#${app.active_bundle_id}` : "none yet")),
      h("div", {}, h("dt", {}, "Replicas"), h("dd", { id: "replica-count" },
        st && !st.error ? `${st.ready}/${st.desired} ready` : "—")),
      app.vanity_full_url ? h("div", {}, h("dt", {}, "Vanity URL"), h("dd", {},
        h("a", { href: app.vanity_full_url, target: "_blank", rel: "noopener noreferrer",
          class: "url", id: "vanity-url" }, app.vanity_full_url))) : null,
      h("div", {}, h("dt", {}, "Access"), h("dd", {}, ACCESS_TEXT[app.access_type]))));
}

// ---- the task panel: a task's output as it streams --------------------------------------

function followTask(panel, page, taskId) {
  const log = h("pre", { class: "log task-log", id: "task-log" });
  const state = h("span", { class: "task-state", id: "task-state" }, "queued");
  const title = h("strong", {}, "Task");
  clear(panel, h("div", { class: "card task" },
    h("div", { class: "task-head" }, title, state,
      h("a", { href: `${page.base}/${page.tab}`, class: "close", "aria-label": "Close" }, "×")),
    log));
  let next = 0;
  let finished = false;
  every(700, async (stillHere) => {
    if (finished) return;
    const task = await api("GET", `/v1/tasks/${encodeURIComponent(taskId)}?first=${next}`);
    if (!stillHere()) return;
    title.textContent = `${task.kind[0].toUpperCase()}${task.kind.slice(1)}`
      + (task.bundle_id ? ` of version #${task.bundle_id}` : "");
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    for (const line of task.status) log.append(`${line}\n`);
    if (atBottom) log.scrollTop = log.scrollHeight;
    next = task.last_status;
    state.textContent = task.finished ? (task.code === 0 ? "done" : "failed") : task.state;
    state.dataset.state = state.textContent;
    if (task.finished) {
      finished = true;
      if (task.code !== 0) toast(`${title.textContent} failed: ${task.error}`, "error");
    }
  });
}

async function runTask(page, request, done) {
  try {
    const answer = await request();
    if (answer && answer.task_id) page.follow(answer.task_id);
    else if (done) done(answer);
  } catch (err) {
    toast(err.message, "error");
  }
}

// ---- overview -------------------------------------------------------------------------------

function renderOverview(content, page, st) {
  const { app } = page;
  const replicas = st && !st.error ? st.replicas : [];
  const parts = [];
  if (!app.active_bundle_id) {
    parts.push(h("p", { class: "empty" }, "Not deployed yet: upload a version under Versions, or ",
      "publish from R with rsconnect::deployAPI()."));
  } else if (st && st.error) {
    parts.push(h("p", { class: "error" }, st.error));
  }
  if (replicas.length) {
    parts.push(h("table", { class: "table", id: "replicas" },
      h("thead", {}, h("tr", {}, ["Replica", "State", "Ready", "Revision", "Restarts"]
        .map((t) => h("th", {}, t)))),
      h("tbody", {}, replicas.map((r) => h("tr", {},
        h("td", { "data-label": "Replica" }, r.name),
        h("td", { "data-label": "State" }, r.state),
        h("td", { "data-label": "Ready" }, r.ready ? "yes" : "no"),
        h("td", { "data-label": "Revision" }, r.revision || "—"),
        h("td", { "data-label": "Restarts" }, String(r.restarts)))))));
  }
  if (st && st.message) parts.push(h("p", { class: "muted" }, st.message));
  // Controls are rebuilt only when missing, so typing in them survives the refresh.
  let controls = content.querySelector("#controls");
  if (app.can_change && app.active_bundle_id && !controls) controls = overviewControls(page);
  clear(content, h("div", { id: "overview-live" }, parts), controls);
}

function overviewControls(page) {
  const { app } = page;
  const count = h("input", { type: "number", min: 0, max: 50, value: app.replicas, id: "scale-to",
    "aria-label": "Replicas" });
  return h("div", { class: "card controls", id: "controls" },
    h("form", { class: "inline", onsubmit: async (event) => {
      event.preventDefault();
      const n = Number(count.value);
      if (!(await confirmAction(`Scale ${app.name}?`, `Run ${n} replica${n === 1 ? "" : "s"}.`,
        "Scale", false))) return;
      await runTask(page, () => api("POST", `/v1/apps/${app.id}/scale`, { replicas: n }));
    } }, field("Replicas", count), h("button", { type: "submit", id: "scale" }, "Scale")),
    h("button", { type: "button", id: "restart", class: "secondary", onclick: async () => {
      if (!(await confirmAction(`Restart ${app.name}?`,
        "Every replica is replaced, one at a time, with no failed request.", "Restart"))) return;
      await runTask(page, () => api("POST", `/v1/apps/${app.id}/restart`));
    } }, "Restart (rolling)"));
}

// ---- traffic --------------------------------------------------------------------------------

function traffic(content, page) {
  const { app } = page;
  let route = "";
  let latest = null;
  const picker = h("select", { id: "route-picker", "aria-label": "Endpoint" });
  const range = h("select", { id: "range", "aria-label": "Time range" },
    [[5, "Last 5 minutes"], [15, "Last 15 minutes"], [60, "Last hour"]].map(([minutes, label]) =>
      h("option", { value: minutes, selected: minutes === 60 }, label)));
  const note = h("p", { class: "muted", id: "traffic-source" });
  const charts = h("div", { class: "charts", id: "charts" });
  const endpoints = h("div", { id: "endpoints" });
  picker.addEventListener("change", () => { route = picker.value; draw(); });
  clear(content, h("div", { class: "filters" }, field("Endpoint", picker), field("Time", range),
    note), charts, h("h2", {}, "Endpoints"), endpoints);

  const draw = () => {
    if (!latest) return;
    const m = latest;
    const series = m.series[route] || m.series[""];
    if (!series) {
      clear(charts, h("p", { class: "empty" }, "No traffic data yet."));
      return;
    }
    clear(charts,
      lineChart({ id: "rps", title: "Requests / s", times: m.times, format: rate,
        lines: [{ label: "req/s", values: series.rps, cls: "s1" }] }),
      lineChart({ id: "errors", title: "Error rate (5xx)", times: m.times, format: percent,
        fixedMax: 0.04, lines: [{ label: "errors", values: series.error_rate, cls: "s3" }] }),
      lineChart({ id: "latency", title: "Latency", times: m.times, format: seconds,
        lines: [{ label: "p50", values: series.p50, cls: "s1" },
          { label: "p99", values: series.p99, cls: "s2" }] }));
  };

  const describe = (m) => {
    if (m.source === "off") return "Traffic charts are off (--metrics-interval 0).";
    if (m.source === "prometheus") return `From Prometheus at ${m.prometheus_url}, ${m.step_seconds} s steps.`;
    const s = m.scrape || {};
    const replicas = Object.entries(s.replicas || {});
    const failing = replicas.filter(([, why]) => why);
    let text = `Read from ${replicas.length} replica${replicas.length === 1 ? "" : "s"} every `
      + `${s.interval_seconds} s, ${m.step_seconds} s steps`;
    text += s.at ? `; last read ${Math.max(0, Math.round(Date.now() / 1000 - s.at))} s ago.` : "; not read yet.";
    if (s.error) text += ` The last read failed: ${s.error}`;
    for (const [name, why] of failing) text += ` ${name}: ${why}.`;
    return text;
  };

  const load = async (stillHere) => {
    const m = await api("GET", `/v1/apps/${app.id}/metrics?minutes=${range.value}`);
    if (!stillHere()) return;
    latest = m;
    note.textContent = describe(m);
    const options = ["", ...m.routes];
    if (picker.options.length !== options.length
        || options.some((r, i) => picker.options[i].value !== r)) {
      clear(picker, options.map((r) => h("option", { value: r }, r || "All endpoints")));
      picker.value = options.includes(route) ? route : "";
    }
    draw();
    clear(endpoints, endpointTable(m, (r) => { route = r; picker.value = r; draw(); }));
  };
  range.addEventListener("change", () => load(stillShown()).catch((err) => toast(err.message, "error")));
  every(5000, load);
}

function endpointTable(m, choose) {
  if (!m.routes.length) {
    return h("p", { class: "empty" }, "No requests in this time range.");
  }
  // Requests over the range, and the rest as of each endpoint's latest step with traffic.
  return h("table", { class: "table", id: "endpoint-table" },
    h("thead", {}, h("tr", {}, ["Endpoint", "Requests", "Latest req/s", "Errors", "p50", "p99"]
      .map((t) => h("th", {}, t)))),
    h("tbody", {}, m.routes.map((r) => {
      const s = m.series[r];
      let i = s.rps.length - 1;
      while (i >= 0 && !s.rps[i]) i -= 1;
      const at = (values) => (i < 0 ? null : values[i]);
      const total = s.requests.reduce((sum, v) => sum + (v || 0), 0);
      return h("tr", { dataset: { route: r } },
        h("td", { "data-label": "Endpoint" }, h("button", { type: "button", class: "link",
          onclick: () => choose(r) }, r)),
        h("td", { "data-label": "Requests" }, String(Math.round(total))),
        h("td", { "data-label": "Latest req/s" }, rate(at(s.rps))),
        h("td", { "data-label": "Errors" }, percent(at(s.error_rate))),
        h("td", { "data-label": "p50" }, seconds(at(s.p50))),
        h("td", { "data-label": "p99" }, seconds(at(s.p99))));
    })));
}

// ---- versions -------------------------------------------------------------------------------

function versions(content, page) {
  const { app } = page;
  const body = h("tbody", { id: "versions-body" });
  const parts = [];
  if (app.can_change) {
    const file = h("input", { type: "file", accept: ".tar.gz,.tgz,application/gzip",
      id: "bundle-file", required: true });
    parts.push(h("form", { class: "card inline", id: "upload", onsubmit: async (event) => {
      event.preventDefault();
      if (!file.files.length) return;
      toast("Uploading…");
      await runTask(page, async () => {
        const bundle = await api("POST", `/v1/apps/${app.id}/bundles`, undefined,
          { raw: file.files[0] });
        return api("POST", `/v1/apps/${app.id}/deploy`, { bundle_id: bundle.id });
      });
    } }, field("New version", file, "a .tar.gz of the app's folder, plumber.R at its top"),
    h("button", { type: "submit" }, "Upload and deploy")));
  }
  parts.push(h("table", { class: "table", id: "versions" },
    h("thead", {}, h("tr", {}, ["Version", "By", "Uploaded", "Deployed", "Size", "Packages", ""]
      .map((t) => h("th", {}, t)))), body));
  clear(content, parts);

  every(3000, async (stillHere) => {
    const answer = await api("GET", `/v1/apps/${app.id}/versions`);
    if (!stillHere()) return;
    const active = answer.versions.find((v) => v.active);
    clear(body, answer.versions.map((v) => {
      let action = null;
      if (app.can_change && !v.active) {
        const older = active && v.kept_version && v.id < active.id;
        const verb = older ? "Roll back" : v.kept_version ? "Activate" : "Deploy";
        action = h("button", { type: "button", class: older ? "secondary" : "",
          dataset: { action: verb.toLowerCase().replace(" ", "-"), version: v.id },
          onclick: async () => {
            const text = `Version #${v.id} replaces #${active ? active.id : "none"}, one replica `
              + "at a time; the running version serves until the new one is ready.";
            if (!(await confirmAction(`${verb} ${app.name} to version #${v.id}?`, text, verb))) return;
            await runTask(page, () => api("POST", `/v1/apps/${app.id}/${older ? "rollback" : "deploy"}`,
              { bundle_id: v.id }));
          } }, verb);
      }
      const packages = v.packages.length
        ? h("details", {}, h("summary", {}, `${v.packages.length}`),
          h("ul", { class: "packages" }, v.packages.map((p) => h("li", {}, p))))
        : h("span", { class: "muted" }, "—");
      return h("tr", { dataset: { version: v.id, active: v.active ? "yes" : "no" } },
        h("td", { "data-label": "Version" }, `#${v.id}`,
          v.active ? h("span", { class: "pill" }, "active") : null,
          !v.kept_version ? h("span", { class: "pill muted" }, "never deployed") : null),
        h("td", { "data-label": "By" }, v.created_by_username || "—"),
        h("td", { "data-label": "Uploaded" }, when(v.created_time)),
        h("td", { "data-label": "Deployed" }, when(v.deployed_time)),
        h("td", { "data-label": "Size" }, bytes(v.size)),
        h("td", { "data-label": "Packages" }, packages),
        h("td", { class: "actions" }, action));
    }));
  });
}

// ---- tasks ----------------------------------------------------------------------------------

function tasks(content, page) {
  const { app } = page;
  if (!app.can_change) {
    clear(content, h("p", { class: "muted" },
      "Deploy tasks are shown to the app's owner, its collaborators and admins."));
    return;
  }
  const body = h("tbody", { id: "tasks-body" });
  clear(content, h("table", { class: "table", id: "tasks" },
    h("thead", {}, h("tr", {}, ["Task", "State", "Version", "Started", "Finished", ""]
      .map((t) => h("th", {}, t)))), body));
  every(3000, async (stillHere) => {
    const answer = await api("GET", `/v1/apps/${app.id}/tasks`);
    if (!stillHere()) return;
    clear(body, answer.tasks.map((t) => h("tr", {},
      h("td", { "data-label": "Task" }, t.kind),
      h("td", { "data-label": "State" }, h("span", { class: "task-state",
        dataset: { state: t.state } }, t.state)),
      h("td", { "data-label": "Version" }, t.bundle_id ? `#${t.bundle_id}` : "—"),
      h("td", { "data-label": "Started" }, when(t.created_time)),
      h("td", { "data-label": "Finished" }, when(t.finished_time)),
      h("td", { class: "actions" }, h("a", { href: `${page.base}/tasks?task=${t.id}` }, "Output")))));
  });
}

// ---- logs -----------------------------------------------------------------------------------

function logs(content, page) {
  const { app } = page;
  if (!app.can_change) {
    clear(content, h("p", { class: "muted" },
      "The replicas' logs are shown to the app's owner, its collaborators and admins."));
    return;
  }
  if (!app.active_bundle_id) {
    clear(content, h("p", { class: "empty" }, "Not deployed yet: no replicas, no logs."));
    return;
  }
  const pause = h("input", { type: "checkbox", id: "logs-pause" });
  const filter = h("input", { type: "search", placeholder: "Filter lines", id: "logs-filter",
    "aria-label": "Filter lines" });
  const tail = h("select", { id: "logs-tail", "aria-label": "Lines" },
    [200, 1000, 5000].map((n) => h("option", { value: n }, `last ${n} lines`)));
  const pre = h("pre", { class: "log", id: "logs" });
  let lines = [];
  const render = () => {
    const q = filter.value.toLowerCase();
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = lines.filter((l) => !q || l.toLowerCase().includes(q)).join("\n");
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  };
  filter.addEventListener("input", render);
  clear(content, h("div", { class: "filters" }, filter, tail,
    h("label", { class: "check" }, pause, "Pause")), pre);
  every(2000, async (stillHere) => {
    if (pause.checked) return;
    const answer = await api("GET", `/v1/apps/${app.id}/logs?tail=${tail.value}`);
    if (!stillHere()) return;
    lines = answer.lines;
    render();
  });
}

// ---- access ---------------------------------------------------------------------------------

function access(content, page) {
  const { app } = page;
  const user = currentUser();
  const owner = user.user_role === "admin" || app.app_role === "owner";
  const parts = [h("h2", {}, "Who may call the API")];
  if (app.can_change) {
    const choice = h("div", { class: "radios", role: "radiogroup", id: "access-type" },
      Object.entries(ACCESS_TEXT).map(([key, label]) => h("label", { class: "check" },
        h("input", { type: "radio", name: "access", value: key, checked: app.access_type === key }),
        label)));
    parts.push(h("form", { class: "card", onsubmit: async (event) => {
      event.preventDefault();
      const value = choice.querySelector("input:checked").value;
      if (value === app.access_type) return;
      const text = value === "all" ? "Anyone will be able to call it, without a key."
        : "Callers will need an API key.";
      if (!(await confirmAction(`Change who may call ${app.name}?`, text, "Change"))) return;
      await runTask(page, () => api("PATCH", `/v1/apps/${app.id}`, { access_type: value }),
        () => toast("Access changed"));
    } }, choice, h("button", { type: "submit", id: "save-access" }, "Save")));
  } else {
    parts.push(h("p", {}, ACCESS_TEXT[app.access_type]));
  }

  parts.push(...vanityPart(page));

  const body = h("tbody", { id: "grants-body" });
  parts.push(h("h2", {}, "Collaborators and viewers"),
    h("p", { class: "muted" }, "Collaborators publish and change the app; viewers see it and, "
      + "when it needs a key, call it."),
    h("table", { class: "table", id: "grants" }, h("thead", {}, h("tr", {},
      ["User", "Role", ""].map((t) => h("th", {}, t)))), body));
  if (owner) {
    const username = h("input", { required: true, id: "grant-user", placeholder: "user name" });
    const role = h("select", { id: "grant-role" }, h("option", { value: "collaborator" },
      "collaborator"), h("option", { value: "viewer" }, "viewer"));
    parts.push(h("form", { class: "card inline", id: "add-grant", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api("POST", `/v1/apps/${app.id}/permissions`, { username: username.value,
          role: role.value });
        toast(`${username.value} is now a ${role.value}`);
        username.value = "";
        refresh();
      } catch (err) {
        toast(err.message, "error");
      }
    } }, field("User", username), field("Role", role), h("button", { type: "submit" }, "Add")));
    parts.push(h("h2", {}, "Delete"), h("div", { class: "card danger-zone" },
      h("p", {}, "Stops every replica and removes all versions of this app."),
      h("button", { type: "button", class: "danger", id: "delete-app", onclick: async () => {
        if (!(await confirmAction(`Delete ${app.name}?`,
          "Its replicas stop and every version is removed. This cannot be undone.", "Delete"))) return;
        try {
          await api("DELETE", `/v1/apps/${app.id}`);
          toast(`Deleting ${app.name}`);
          location.hash = "#/apps";
        } catch (err) {
          toast(err.message, "error");
        }
      } }, "Delete app")));
  }
  clear(content, parts);

  const refresh = async () => {
    const answer = await api("GET", `/v1/apps/${app.id}/permissions`);
    clear(body,
      h("tr", {}, h("td", { "data-label": "User" }, answer.owner.username),
        h("td", { "data-label": "Role" }, "owner"), h("td", {})),
      answer.permissions.map((p) => h("tr", { dataset: { user: p.user.username } },
        h("td", { "data-label": "User" }, p.user.username),
        h("td", { "data-label": "Role" }, p.role),
        h("td", { class: "actions" }, owner ? h("button", { type: "button", class: "secondary",
          onclick: async () => {
            if (!(await confirmAction(`Remove ${p.user.username}?`,
              `${p.user.username} will no longer be a ${p.role} of ${app.name}.`, "Remove"))) return;
            try {
              await api("DELETE", `/v1/apps/${app.id}/permissions/${p.user.id}`);
              refresh();
            } catch (err) {
              toast(err.message, "error");
            }
          } }, "Remove") : null))));
  };
  every(10000, refresh);
}

// A path of its own besides /content/<name>/ (Connect's vanity URL); checked by the server.
function vanityPart(page) {
  const { app } = page;
  const parts = [h("h2", {}, "Vanity path")];
  if (!app.can_change) {
    parts.push(h("p", {}, app.vanity_path ? `Also served at ${app.vanity_path}` : "None."));
    return parts;
  }
  const input = h("input", { id: "vanity-path", value: app.vanity_path || "",
    placeholder: "/parity/" });
  const changed = (answer) => {
    app.vanity_path = answer.path;
    toast(answer.path ? `Also served at ${answer.path}` : "Vanity path removed");
  };
  parts.push(h("form", { class: "card inline", id: "vanity", onsubmit: async (event) => {
    event.preventDefault();
    await runTask(page, () => api("PUT", `/v1/apps/${app.id}/vanity`, { path: input.value }),
      changed);
  } }, field("Path", input, "lower-case letters, digits, - _ . and /"),
  h("button", { type: "submit", id: "save-vanity" }, "Save"),
  app.vanity_path ? h("button", { type: "button", class: "secondary", id: "clear-vanity",
    onclick: () => runTask(page, () => api("DELETE", `/v1/apps/${app.id}/vanity`), changed) },
  "Remove") : null));
  return parts;
}
