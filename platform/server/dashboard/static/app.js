// The dashboard's shell: sign-in, the router (#/apps, #/apps/<id>/<tab>, #/keys, #/users),
// and the top bar.

import { api, ApiError, currentUser, onSignedOut, setSession } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { stopPolling } from "./poll.js";
import { appsPage } from "./apps.js";
import { appPage } from "./app_page.js";
import { keysPage } from "./keys.js";
import { usersPage } from "./users.js";

const main = document.getElementById("main");

function showChrome(user) {
  const bar = document.getElementById("topbar");
  bar.hidden = !user;
  if (!user) return;
  document.getElementById("who-name").textContent = user.username;
  document.getElementById("who-role").textContent = user.user_role;
  document.querySelector('[data-nav="users"]').hidden = user.user_role !== "admin";
}

function signInPage(message) {
  stopPolling();
  showChrome(null);
  const error = h("p", { class: "error", role: "alert" }, message || "");
  error.hidden = !message;
  const fail = (err) => { error.textContent = err.message; error.hidden = false; };
  const signedIn = (view) => {
    setSession(view);
    if (!location.hash || location.hash === "#/signin") location.hash = "#/apps";
    route();
  };
  const keyInput = h("input", {
    type: "password", name: "key", autocomplete: "off", required: true, placeholder: "plk_…",
    id: "signin-key",
  });
  const userInput = h("input", { name: "username", autocomplete: "username", required: true,
    id: "signin-username" });
  const passInput = h("input", { type: "password", name: "password",
    autocomplete: "current-password", required: true, id: "signin-password" });
  const submit = (body) => async (event) => {
    event.preventDefault();
    error.hidden = true;
    try {
      signedIn(await api("POST", "/v1/session", body(), { signingIn: true }));
    } catch (err) {
      fail(err);
    }
  };
  clear(main, h("section", { class: "signin" },
    h("h1", {}, h("img", { src: "/static/favicon.svg", alt: "", width: 36, height: 36 }),
      "plumbline"),
    h("p", { class: "muted" }, "Sign in to see and run your plumber APIs."),
    error,
    h("form", { class: "card", id: "signin-key-form",
      onsubmit: submit(() => ({ key: keyInput.value })) },
      h("h2", {}, "With an API key"),
      h("label", { class: "field" }, h("span", { class: "label" }, "API key"), keyInput),
      h("button", { type: "submit" }, "Sign in with key")),
    h("form", { class: "card", id: "signin-password-form",
      onsubmit: submit(() => ({ username: userInput.value, password: passInput.value })) },
      h("h2", {}, "With a password"),
      h("label", { class: "field" }, h("span", { class: "label" }, "User name"), userInput),
      h("label", { class: "field" }, h("span", { class: "label" }, "Password"), passInput),
      h("button", { type: "submit" }, "Sign in"))));
  keyInput.focus();
}

function markNav(name) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  const user = currentUser();
  if (!user) return signInPage();
  stopPolling();
  showChrome(user);
  const [path, query] = (location.hash.replace(/^#/, "") || "/apps").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
  if (parts[0] === "apps" && parts[1]) {
    markNav("apps");
    return appPage(main, decodeURIComponent(parts[1]), parts[2] || "overview", params);
  }
  if (parts[0] === "keys") { markNav("keys"); return keysPage(main); }
  if (parts[0] === "users" && user.user_role === "admin") { markNav("users"); return usersPage(main); }
  markNav("apps");
  return appsPage(main, params);
}

async function start() {
  onSignedOut((message) => signInPage(`Signed out: ${message}`));
  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api("DELETE", "/v1/session");
    } catch (err) {
      // signed out either way
    }
    setSession(null);
    signInPage("You signed out.");
  });
  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && currentUser()) route();
  });
  try {
    setSession(await api("GET", "/v1/session", undefined, { signingIn: true }));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(err.message, "error");
    return signInPage();
  }
  route();
}

start();
