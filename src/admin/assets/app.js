// The console's entry point: the hash router (#/dashboard, #/users, #/users/new, #/users/ID), the
// top bar, and the switch between the sign-in screen and the signed-in views.
import { currentUser, onSessionEnded, signOut } from './api.js';
import { renderCreateUser } from './create.js';
import { renderDashboard } from './dashboard.js';
import { navigate } from './nav.js';
import { renderSignIn } from './signin.js';
import { renderUser } from './user.js';
import { renderUsers } from './users.js';

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const topbar = /** @type {HTMLElement} */ (document.getElementById('topbar'));
const whoami = /** @type {HTMLElement} */ (document.getElementById('whoami'));
const noticeArea = /** @type {HTMLElement} */ (document.getElementById('notice'));

/** Where the page was headed when the session ended, to return there after signing in. */
let afterSignIn = '#/dashboard';
let rendering = 0;

async function route() {
  const ticket = ++rendering;
  if (noticeArea.dataset.keep) delete noticeArea.dataset.keep;
  else noticeArea.textContent = '';
  const user = currentUser();
  topbar.hidden = !user;
  if (!user) {
    afterSignIn = location.hash && location.hash !== '#/' ? location.hash : '#/dashboard';
    main.replaceChildren();
    renderSignIn(main, signInMessage, () => {
      signInMessage = '';
      navigate(afterSignIn);
    });
    return;
  }
  whoami.textContent = `Signed in as ${user.username}`;
  const [path, search = ''] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(search);
  const parts = (path ?? '').split('/').filter(Boolean);
  for (const link of topbar.querySelectorAll('[data-nav]')) {
    const current = link.getAttribute('data-nav') === (parts[0] === 'users' ? (parts[1] === 'new' ? 'new' : 'users') : 'dashboard');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const view = document.createElement('div');
  if (parts[0] === 'users' && parts[1] === 'new') await renderCreateUser(view);
  else if (parts[0] === 'users' && parts[1]) await renderUser(view, decodeURIComponent(parts[1]));
  else if (parts[0] === 'users') await renderUsers(view, params);
  else await renderDashboard(view);
  // A later navigation, or the end of the session, overtook this one.
  if (ticket !== rendering || !currentUser()) return;
  main.replaceChildren(view);
  /** @type {HTMLElement | null} */ (main.querySelector('.page-heading'))?.focus();
  document.title = `${main.querySelector('h1')?.textContent ?? 'Admin'} · gatehouse admin`;
}

let signInMessage = '';
onSessionEnded((message) => {
  signInMessage = message;
  route();
});

document.getElementById('sign-out')?.addEventListener('click', async () => {
  await signOut();
  signInMessage = 'You are signed out.';
  navigate('#/dashboard');
});

window.addEventListener('hashchange', route);
route();
