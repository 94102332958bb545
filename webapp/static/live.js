// Live stats on a link's page (templates/links/_stats_live.html). htmx (vendored in static/vendor/)
// fetches the fragment again every few seconds and swaps it in whole; this file sets htmx up for the
// app's CSP and bounds the polling. Without JavaScript, or without htmx, the page is as it was rendered.
(() => {
  const htmx = window.htmx;
  if (!htmx) return;
  // The CSP allows scripts and styles from /static only: no eval, no <style> htmx would inject for its
  // request indicators, and no script inside a swapped fragment ever runs. Requests stay on this origin.
  Object.assign(htmx.config, {
    includeIndicatorStyles: false, allowEval: false, allowScriptTags: false, selfRequestsOnly: true,
    historyEnabled: false,
  });
  // An open tab stops polling after this long, so a forgotten page does not keep a session alive for ever.
  const MAX_MINUTES = 30;
  const started = Date.now();
  let stopped = false;
  let focused = null;

  const note = () => document.querySelector("[data-live-note]");
  const isLive = (element) => element instanceof Element && element.matches("[data-live]");

  function stop(message) {
    stopped = true;
    if (note()) note().textContent = message;
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (note() && document.querySelector("[data-live]")) note().hidden = false;
  });

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (!isLive(event.detail.elt)) return;
    if (!stopped && Date.now() - started > MAX_MINUTES * 60000) {
      stop(`Live updates stopped after ${MAX_MINUTES} minutes: reload the page to start them again.`);
    }
    if (stopped || document.hidden) event.preventDefault(); // no request while the tab is hidden
  });

  // Back on the tab: refresh now rather than at the next tick.
  document.addEventListener("visibilitychange", () => {
    const live = document.querySelector("[data-live]");
    if (live && !document.hidden && !stopped) htmx.trigger(live, "live-refresh");
  });

  document.addEventListener("htmx:beforeSwap", (event) => {
    const live = event.detail.elt;
    if (!isLive(live)) return;
    // Signed out meanwhile: the answer is the sign-in page after a redirect. Keep the numbers, stop asking.
    const asked = new URL(event.detail.requestConfig.path, location.href).pathname;
    if (!event.detail.xhr.responseURL || new URL(event.detail.xhr.responseURL).pathname !== asked) {
      event.detail.shouldSwap = false;
      stop("Live updates stopped: you are signed out. Sign in again and reload the page.");
      return;
    }
    // The numbers table stays open if it was, and the focus stays where it was.
    const numbers = live.querySelector("details[open]");
    if (numbers && numbers.id) {
      event.detail.serverResponse = event.detail.serverResponse.replace(`<details id="${numbers.id}"`, `<details id="${numbers.id}" open`);
    }
    focused = live.contains(document.activeElement) && document.activeElement.id ? document.activeElement.id : null;
  });

  document.addEventListener("htmx:load", () => {
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    focused = null;
  });
})();
