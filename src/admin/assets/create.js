// Create a user: the API checks every field, and its messages appear beside the fields.
import { api } from './api.js';
import { alertArea, checkboxes, clearErrors, field, h, pageHeading, showErrors } from './dom.js';
import { navigate, notice } from './nav.js';

/** @param {HTMLElement} view */
export async function renderCreateUser(view) {
  const alert = alertArea();
  const submit = h('button', { type: 'submit', class: 'button-primary' }, 'Create user');
  // novalidate: the API's own messages are the ones shown, the same for every client.
  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-labelledby': 'create-heading' },
    alert,
    field({ name: 'username', label: 'Username', hint: '3 to 32 characters: a–z, 0–9, ".", "_" or "-"', required: true }),
    field({ name: 'email', label: 'Email', type: 'email', required: true }),
    field({ name: 'display_name', label: 'Display name (optional)' }),
    field({
      name: 'password',
      label: 'Password',
      type: 'password',
      autocomplete: 'new-password',
      hint: 'At least 12 characters; not a common password and not the username',
      required: true,
    }),
    checkboxes(
      'roles',
      'Roles',
      [
        ['user', 'User'],
        ['admin', 'Admin (may manage users)'],
      ],
      ['user'],
    ),
    h('div', { class: 'actions' }, submit, h('a', { href: '#/users', class: 'button-link' }, 'Cancel')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form, alert);
    const data = new FormData(/** @type {HTMLFormElement} */ (form));
    const displayName = String(data.get('display_name') ?? '').trim();
    const body = {
      username: String(data.get('username') ?? '').trim(),
      email: String(data.get('email') ?? '').trim(),
      password: String(data.get('password') ?? ''),
      roles: data.getAll('roles').map(String),
      ...(displayName ? { display_name: displayName } : {}),
    };
    submit.setAttribute('disabled', '');
    try {
      const user = await api('POST', '/v1/users', body);
      notice(`Created ${user.username}.`);
      navigate(`#/users/${encodeURIComponent(user.id)}`);
    } catch (error) {
      submit.removeAttribute('disabled');
      if (/** @type {any} */ (error)?.problem?.status !== 401) showErrors(form, alert, error);
    }
  });
  view.append(h('div', { id: 'create-heading' }, pageHeading('New user')), form);
}
