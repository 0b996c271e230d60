// Users (admins only): create, change role, lock, give a key or a password.

import { api, currentUser } from "./api.js";
import { clear, confirmAction, field, h, toast, when } from "./dom.js";
import { every } from "./poll.js";

const ROLES = ["viewer", "publisher", "admin"];

export function usersPage(main) {
  const body = h("tbody", { id: "users-body" });
  const reveal = h("div", { id: "user-key" });
  const me = currentUser();

  const refresh = async () => {
    const answer = await api("GET", "/v1/users");
    clear(body, answer.users.map((u) => {
      const role = h("select", { "aria-label": `Role of ${u.username}`, disabled: u.id === me.id },
        ROLES.map((r) => h("option", { value: r, selected: r === u.user_role }, r)));
      role.addEventListener("change", async () => {
        try {
          await api("PATCH", `/v1/users/${u.id}`, { role: role.value });
          toast(`${u.username} is now a ${role.value}`);
        } catch (err) {
          toast(err.message, "error");
        }
        refresh();
      });
      return h("tr", { dataset: { user: u.username } },
        h("td", { "data-label": "User" }, u.username, u.email ? h("div", { class: "muted small" },
          u.email) : null),
        h("td", { "data-label": "Role" }, role),
        h("td", { "data-label": "Created" }, when(u.created_time)),
        h("td", { "data-label": "State" }, u.locked ? "locked" : "active"),
        h("td", { class: "actions" },
          h("button", { type: "button", class: "secondary", onclick: async () => {
            try {
              const made = await api("POST", `/v1/users/${u.id}/keys`, { name: "dashboard" });
              clear(reveal, h("div", { class: "card reveal", role: "alert" },
                h("strong", {}, `A key for ${u.username}; give it to them now, it is not shown again.`),
                h("div", { class: "key-row" }, h("code", {}, made.key))));
            } catch (err) {
              toast(err.message, "error");
            }
          } }, "New key"),
          h("button", { type: "button", class: "secondary", onclick: () => {
            const password = h("input", { type: "password", autocomplete: "new-password",
              minlength: 10, required: true });
            clear(reveal, h("form", { class: "card inline", onsubmit: async (event) => {
              event.preventDefault();
              try {
                await api("PUT", `/v1/users/${u.id}/password`, { password: password.value });
                toast(`Password set for ${u.username}; their other sign-ins ended`);
                clear(reveal);
              } catch (err) {
                toast(err.message, "error");
              }
            } }, field(`New password for ${u.username}`, password, "10 characters or more"),
            h("button", { type: "submit" }, "Set password")));
            password.focus();
          } }, "Set password"),
          u.id !== me.id ? h("button", { type: "button", class: u.locked ? "secondary" : "danger",
            onclick: async () => {
              const lock = !u.locked;
              if (lock && !(await confirmAction(`Lock ${u.username}?`,
                "Their keys and sign-ins stop working until unlocked.", "Lock"))) return;
              try {
                await api("PATCH", `/v1/users/${u.id}`, { locked: lock });
              } catch (err) {
                toast(err.message, "error");
              }
              refresh();
            } }, u.locked ? "Unlock" : "Lock") : null));
    }));
  };

  const username = h("input", { required: true, id: "new-username" });
  const role = h("select", { id: "new-role" }, ROLES.map((r) => h("option", { value: r,
    selected: r === "publisher" }, r)));
  const password = h("input", { type: "password", autocomplete: "new-password",
    id: "new-user-password", minlength: 10 });
  clear(main,
    h("div", { class: "page-head" }, h("h1", {}, "Users")),
    h("form", { class: "card inline", id: "create-user", onsubmit: async (event) => {
      event.preventDefault();
      try {
        const user = await api("POST", "/v1/users", { username: username.value, role: role.value });
        if (password.value) await api("PUT", `/v1/users/${user.id}/password`, { password: password.value });
        toast(`Created ${user.username}`);
        username.value = "";
        password.value = "";
        refresh();
      } catch (err) {
        toast(err.message, "error");
      }
    } }, field("User name", username), field("Role", role),
    field("Password", password, "optional: they can also sign in with a key"),
    h("button", { type: "submit" }, "Create user")),
    reveal,
    h("table", { class: "table", id: "users" }, h("thead", {}, h("tr", {},
      ["User", "Role", "Created", "State", ""].map((t) => h("th", {}, t)))), body));
  every(15000, refresh);
}
