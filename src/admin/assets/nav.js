// Navigation and confirmations shared by the views, kept apart from app.js so that no view
// imports the router that imports it.

/** A short confirmation in the polite live region ("Created alice."), kept through the next navigation. @param {string} message */
export function notice(message) {
  const area = document.getElementById('notice');
  if (!area) return;
  area.textContent = message;
  area.dataset.keep = '1';
}

/** Goes to a view; the same hash renders it again (after a change the view must show). @param {string} hash */
export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}
