// The sign-in screen: username and password, exchanged for tokens kept in memory only.
import { signIn } from './api.js';
import { alertArea, clearErrors, field, h, showAlert, showErrors } from './dom.js';

/**
 * @param {HTMLElement} main @param {string} message why the previous session ended, if it did
 * @param {() => void} onSignedIn
 */
export function renderSignIn(main, message, onSignedIn) {
  const alert = alertArea();
  const submit = h('button', { type: 'submit', class: 'button-primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card signin', novalidate: true, 'aria-labelledby': 'signin-heading' },
    h('h1', { id: 'signin-heading', class: 'page-heading', tabindex: '-1' }, 'Sign in to gatehouse'),
    h('p', { class: 'hint' }, 'Use an admin account, for example the admin whose password gatehouse printed at its first start.'),
    message ? h('p', { class: 'info', role: 'status' }, message) : null,
    alert,
    field({ name: 'username', label: 'Username', autocomplete: 'username', required: true }),
    field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', required: true }),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const data = new FormData(/** @type {HTMLFormElement} */ (form));
    const username = String(data.get('username') ?? '').trim();
    const password = String(data.get('password') ?? '');
    if (!username || !password) {
      showAlert(alert, 'Enter a username and a password.');
      return;
    }
    submit.setAttribute('disabled', '');
    try {
      await signIn(username, password);
      onSignedIn();
    } catch (error) {
      const problem = /** @type {any} */ (error)?.problem;
      if (problem?.code === 'unauthorized') showAlert(alert, 'The username or password is wrong, or the account is disabled.');
      else showErrors(form, alert, error);
      submit.removeAttribute('disabled');
      /** @type {HTMLInputElement | null} */ (form.querySelector('input[name=password]'))?.select();
    }
  });
  main.append(form);
  /** @type {HTMLElement | null} */ (form.querySelector('input[name=username]'))?.focus();
}
