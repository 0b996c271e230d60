// Small DOM helpers: elements built from data (text is always text, never HTML), formats,
// the confirmation dialog and the toast.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function ago(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  if (seconds < 45) return "just now";
  const minutes = seconds / 60;
  if (minutes < 60) return `${Math.round(minutes)} min ago`;
  const hours = minutes / 60;
  if (hours < 24) return `${Math.round(hours)} h ago`;
  const days = hours / 24;
  if (days < 30) return `${Math.round(days)} d ago`;
  return new Date(iso).toLocaleDateString();
}

export function when(iso) {
  // Relative, with the exact time on hover.
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString() }, ago(iso));
}

export function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 1) return `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms`;
  return `${value.toFixed(2)} s`;
}

export function rate(value) {
  if (value === null || value === undefined) return "—";
  if (value === 0) return "0";
  return value >= 10 ? value.toFixed(0) : value.toFixed(value >= 1 ? 1 : 2);
}

export function percent(value) {
  if (value === null || value === undefined) return "—";
  const p = value * 100;
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p.toFixed(1)} %`;
}

export const HEALTH_TEXT = {
  healthy: "Healthy",
  deploying: "Deploying",
  degraded: "Degraded",
  down: "Down",
  stopped: "Stopped",
  "not deployed": "Not deployed",
  unknown: "Unknown",
};

export function badge(health) {
  const key = health || "unknown";
  return h("span", { class: `badge badge-${key.replace(" ", "-")}`, dataset: { health: key } },
    HEALTH_TEXT[key] || key);
}

export const ACCESS_TEXT = {
  all: "Public",
  logged_in: "Any key of this server",
  acl: "Listed users' keys",
};

// Resolves true when the person confirms; the dialog is modal (Escape cancels).
export function confirmAction(title, text, action, danger = true) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const ok = document.getElementById("confirm-ok");
  ok.textContent = action;
  ok.className = danger ? "danger" : "";
  dialog.returnValue = "cancel";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

let toastTimer = null;
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = ""; }, kind === "error" ? 8000 : 4000);
}

export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", { class: "label" }, label), control,
    hint ? h("span", { class: "hint" }, hint) : null);
}
