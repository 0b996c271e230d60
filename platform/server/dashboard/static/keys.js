// Your API keys (create, shown once; revoke) and your password.

import { api, currentUser, hasPassword } from "./api.js";
import { clear, confirmAction, field, h, toast, when } from "./dom.js";
import { every } from "./poll.js";

export function keysPage(main) {
  const body = h("tbody", { id: "keys-body" });
  const fresh = h("div", { id: "new-key" });
  const name = h("input", { required: true, maxlength: 100, id: "key-name",
    placeholder: "laptop, CI, …" });
  const refresh = async () => {
    const answer = await api("GET", "/v1/keys");
    clear(body, answer.keys.slice().reverse().map((k) => h("tr", {
      dataset: { key: k.name, active: k.active ? "yes" : "no" } },
      h("td", { "data-label": "Name" }, k.name),
      h("td", { "data-label": "Key" }, h("code", {}, `${k.hint}…`)),
      h("td", { "data-label": "Created" }, when(k.created_time)),
      h("td", { "data-label": "Last used" }, when(k.last_used_time)),
      h("td", { "data-label": "State" }, k.active ? "active"
        : h("span", { class: "muted" }, "revoked ", when(k.revoked_time))),
      h("td", { class: "actions" }, k.active ? h("button", { type: "button", class: "secondary",
        dataset: { revoke: k.name }, onclick: async () => {
          if (!(await confirmAction(`Revoke the key ${k.name}?`,
            "Calls with it are refused from now on (and a dashboard signed in with it signs out).",
            "Revoke"))) return;
          try {
            await api("DELETE", `/v1/keys/${k.id}`);
            toast(`Revoked ${k.name}`);
            refresh();
          } catch (err) {
            toast(err.message, "error");
          }
        } }, "Revoke") : null))));
  };

  const password = h("input", { type: "password", autocomplete: "new-password", minlength: 10,
    required: true, id: "new-password" });
  const currentPassword = h("input", { type: "password", autocomplete: "current-password",
    id: "current-password" });

  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "API keys"),
      h("span", { class: "muted" }, `for ${currentUser().username}`)),
    h("p", { class: "muted" }, "Send a key as Authorization: Key <key> (rsconnect does), or sign "
      + "in here with it. The server keeps only a hash of each key: it is shown once."),
    h("form", { class: "card inline", id: "create-key", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const made = await api("POST", "/v1/keys", { name: name.value });
        name.value = "";
        const value = h("code", { id: "new-key-value" }, made.key);
        clear(fresh, h("div", { class: "card reveal", role: "alert" },
          h("strong", {}, `New key ${made.name}: copy it now, it is not shown again.`),
          h("div", { class: "key-row" }, value, h("button", { type: "button", class: "secondary",
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(made.key);
                toast("Copied");
              } catch (err) {
                toast("Select the key and copy it", "error");
              }
            } }, "Copy"))));
        refresh();
      } catch (err) {
        toast(err.message, "error");
      }
    } }, field("Name", name, "what the key is for"), h("button", { type: "submit" }, "Create key")),
    fresh,
    h("table", { class: "table", id: "keys" }, h("thead", {}, h("tr", {},
      ["Name", "Key", "Created", "Last used", "State", ""].map((t) => h("th", {}, t)))), body),
    h("h2", {}, "Password"),
    h("p", { class: "muted" }, hasPassword()
      ? "Change the password you sign in to the dashboard with."
      : "Set a password to sign in to the dashboard without a key."),
    h("form", { class: "card inline", id: "password-form", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api("PUT", "/v1/user/password", { password: password.value,
          current_password: currentPassword.value });
        password.value = "";
        currentPassword.value = "";
        toast("Password saved; other sign-ins of yours ended");
      } catch (err) {
        toast(err.message, "error");
      }
    } }, hasPassword() ? field("Current password", currentPassword) : null,
    field("New password", password, "10 characters or more"),
    h("button", { type: "submit" }, "Save password")));
  every(15000, refresh);
}
