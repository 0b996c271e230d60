// Keeping a page current without reloading: each page polls the API while it is shown and the
// browser tab is visible; leaving the page stops its polls, and an answer that arrives after
// the page changed is dropped.

import { ApiError } from "./api.js";

let timers = [];
let generation = 0;

// Calls fn(stillHere) now and every `ms` milliseconds until the page changes.
export function every(ms, fn) {
  const mine = generation;
  let busy = false;
  const tick = async () => {
    if (busy || document.hidden || mine !== generation) return;
    busy = true;
    try {
      await fn(() => mine === generation);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) console.warn(err);
    } finally {
      busy = false;
    }
  };
  timers.push(setInterval(tick, ms));
  tick();
}

// A check that stays true while the current page is shown.
export function stillShown() {
  const mine = generation;
  return () => mine === generation;
}

export function stopPolling() {
  generation += 1;
  for (const t of timers) clearInterval(t);
  timers = [];
}
