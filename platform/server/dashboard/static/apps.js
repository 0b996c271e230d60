// The apps page: every app the user may see, with its URL, owner, active version, replicas
// ready/desired and a health badge; filtered and searched as you type, refreshed every 3 s.

import { api, currentUser } from "./api.js";
import { every } from "./poll.js";
import { ACCESS_TEXT, HEALTH_TEXT, badge, clear, field, h, toast } from "./dom.js";

export function appsPage(main, params) {
  const user = currentUser();
  const search = h("input", {
    type: "search", id: "app-search", placeholder: "Name, title, owner or URL",
    value: params.get("q") || "", "aria-label": "Search apps",
  });
  const healthFilter = h("select", { id: "health-filter", "aria-label": "Health" },
    h("option", { value: "" }, "Any health"),
    Object.entries(HEALTH_TEXT).map(([key, label]) => h("option", { value: key }, label)));
  const mine = h("input", { type: "checkbox", id: "mine-only" });
  const count = h("span", { class: "muted", id: "app-count" });
  const body = h("tbody", { id: "apps-body" });
  const table = h("table", { class: "table apps", id: "apps-table" },
    h("thead", {}, h("tr", {},
      ["App", "URL", "Owner", "Version", "Replicas", "Health", "Access"].map((t) => h("th", {}, t)))),
    body);
  const empty = h("p", { class: "empty", hidden: true });
  let apps = [];

  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = apps.filter((app) => {
      const status = app.status || {};
      if (healthFilter.value && status.health !== healthFilter.value) return false;
      if (mine.checked && app.owner_id !== user.id && app.app_role !== "collaborator") return false;
      if (!q) return true;
      return [app.name, app.title, app.owner_username, app.url]
        .some((v) => (v || "").toLowerCase().includes(q));
    });
    count.textContent = `${shown.length} of ${apps.length} app${apps.length === 1 ? "" : "s"}`;
    empty.hidden = shown.length > 0;
    empty.textContent = apps.length === 0
      ? "No apps yet. Publish one from R with rsconnect::deployAPI(), or with `plumbline publish`."
      : "No app matches the filter.";
    clear(body, shown.map((app) => {
      const status = app.status || {};
      const link = `#/apps/${app.id}`;
      return h("tr", { dataset: { app: app.name } },
        h("td", { "data-label": "App" }, h("a", { href: link, class: "app-name" }, app.title),
          app.title !== app.name ? h("div", { class: "muted small" }, app.name) : null),
        h("td", { "data-label": "URL" }, h("a", { href: app.url, class: "url", target: "_blank",
          rel: "noopener noreferrer" }, app.url)),
        h("td", { "data-label": "Owner" }, app.owner_username),
        h("td", { "data-label": "Version" }, app.active_bundle_id ? `#${app.active_bundle_id}` : "—"),
        h("td", { "data-label": "Replicas", class: "replicas" },
          app.active_bundle_id ? `${status.ready ?? 0}/${status.desired ?? app.replicas}` : "—"),
        h("td", { "data-label": "Health", title: status.message || "" }, badge(status.health)),
        h("td", { "data-label": "Access" }, ACCESS_TEXT[app.access_type] || app.access_type));
    }));
  };

  for (const control of [search, healthFilter, mine]) control.addEventListener("input", render);

  const name = h("input", { name: "name", required: true, pattern: "[A-Za-z0-9_-]{3,64}",
    placeholder: "my-api", id: "new-app-name" });
  const create = user.user_role !== "viewer" ? h("details", { class: "card create" },
    h("summary", {}, "New app"),
    h("form", {
      class: "inline", onsubmit: async (event) => {
        event.preventDefault();
        try {
          const app = await api("POST", "/v1/apps", { name: name.value });
          toast(`Created ${app.name}: upload its first version`);
          location.hash = `#/apps/${app.id}/versions`;
        } catch (err) {
          toast(err.message, "error");
        }
      },
    }, field("Name", name, "3–64 letters, digits, _ or -"), h("button", { type: "submit" }, "Create")))
    : null;

  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "Apps"), count),
    h("div", { class: "filters" }, search, healthFilter,
      h("label", { class: "check" }, mine, "Mine only")),
    table, empty, create);
  if (window.matchMedia("(min-width: 721px)").matches) search.focus();  // no keyboard pop-up on phones

  every(3000, async (stillHere) => {
    const answer = await api("GET", "/v1/apps?include=status");
    if (!stillHere()) return;
    apps = answer.apps;
    render();
  });
}
