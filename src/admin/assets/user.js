// One user: details, edit, enable/disable, a new password, ending sessions, deletion (confirmed in
// a modal dialog) and the sign-in history, each through its own API call.
import { api, currentUser, query } from './api.js';
import { alertArea, checkboxes, clearErrors, errorPanel, field, formatTime, h, pageHeading, showAlert, showErrors } from './dom.js';
import { navigate, notice } from './nav.js';

/** Runs an action of a form; a 401 is left to the sign-in screen. @param {HTMLElement} form @param {HTMLElement} alert @param {() => Promise<void>} action */
async function submitting(form, alert, action) {
  const buttons = [...form.querySelectorAll('button')];
  clearErrors(form, alert);
  for (const button of buttons) button.setAttribute('disabled', '');
  try {
    await action();
  } catch (error) {
    if (/** @type {any} */ (error)?.problem?.status !== 401) showErrors(form, alert, error);
  } finally {
    for (const button of buttons) button.removeAttribute('disabled');
  }
}

/** @param {import('./api.js').User} user */
function details(user) {
  /** @type {[string, string][]} */
  const items = [
    ['Email', user.email],
    ['Display name', user.display_name ?? '—'],
    ['Roles', user.roles.join(', ')],
    ['Status', user.status === 'active' ? 'Active' : 'Disabled'],
    ['Created', formatTime(user.created_at)],
    ['Last sign-in', formatTime(user.last_login_at)],
    ['Last seen', formatTime(user.last_seen_at)],
    ['Id', user.id],
  ];
  return h('dl', { class: 'details' }, ...items.flatMap(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}

/** @param {import('./api.js').User} user @param {string} hash */
function editForm(user, hash) {
  const alert = alertArea();
  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-labelledby': 'edit-heading' },
    h('h2', { id: 'edit-heading' }, 'Edit'),
    alert,
    field({ name: 'email', label: 'Email', type: 'email', value: user.email }),
    field({ name: 'display_name', label: 'Display name', value: user.display_name ?? '' }),
    checkboxes(
      'roles',
      'Roles',
      [
        ['user', 'User'],
        ['admin', 'Admin'],
      ],
      user.roles,
    ),
    field({
      name: 'status',
      label: 'Status',
      value: user.status,
      options: [
        ['active', 'Active'],
        ['disabled', 'Disabled (cannot sign in; sessions end)'],
      ],
    }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button-primary' }, 'Save changes')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(/** @type {HTMLFormElement} */ (form));
    const displayName = String(data.get('display_name') ?? '').trim();
    submitting(form, alert, async () => {
      const updated = await api('PATCH', `/v1/users/${encodeURIComponent(user.id)}`, {
        email: String(data.get('email') ?? '').trim(),
        display_name: displayName === '' ? null : displayName,
        roles: data.getAll('roles').map(String),
        status: String(data.get('status')),
      });
      notice(`Saved ${updated.username}.`);
      navigate(hash);
    });
  });
  return form;
}

/** @param {import('./api.js').User} user @param {string} hash */
function accessForm(user, hash) {
  const alert = alertArea();
  const disabling = user.status === 'active';
  const toggle = h(
    'button',
    { type: 'button', class: disabling ? 'button-danger' : 'button-secondary' },
    disabling ? 'Disable user' : 'Enable user',
  );
  const revoke = h('button', { type: 'button', class: 'button-secondary' }, 'Sign out everywhere');
  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-labelledby': 'access-heading' },
    h('h2', { id: 'access-heading' }, 'Access'),
    alert,
    h(
      'p',
      { class: 'hint' },
      disabling
        ? 'Disabling ends every session and refuses sign-in until the user is enabled again.'
        : 'This user is disabled and cannot sign in.',
    ),
    user.id === currentUser()?.id
      ? h('p', { class: 'info' }, 'This is your own account: ending its sessions or setting its password signs you out here too.')
      : null,
    h('div', { class: 'actions' }, toggle, revoke),
    field({
      name: 'new_password',
      label: 'New password',
      type: 'password',
      autocomplete: 'new-password',
      hint: 'At least 12 characters. Setting it ends every session of the user.',
    }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button-secondary' }, 'Set password')),
  );
  toggle.addEventListener('click', () =>
    submitting(form, alert, async () => {
      await api('PATCH', `/v1/users/${encodeURIComponent(user.id)}`, { status: disabling ? 'disabled' : 'active' });
      notice(disabling ? `Disabled ${user.username}; their sessions have ended.` : `Enabled ${user.username}.`);
      navigate(hash);
    }),
  );
  revoke.addEventListener('click', () =>
    submitting(form, alert, async () => {
      const { revoked } = await api('DELETE', `/v1/users/${encodeURIComponent(user.id)}/sessions`);
      notice(`Ended ${revoked} session${revoked === 1 ? '' : 's'} of ${user.username}.`);
      navigate(hash);
    }),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = /** @type {HTMLInputElement} */ (form.querySelector('input[name=new_password]'));
    submitting(form, alert, async () => {
      await api('PUT', `/v1/users/${encodeURIComponent(user.id)}/password`, { new_password: input.value });
      input.value = '';
      notice(`Set a new password for ${user.username}; their sessions have ended.`);
      navigate(hash);
    });
  });
  return form;
}

/** Deletion behind a modal dialog: focus moves into it, Escape cancels, focus returns after. @param {import('./api.js').User} user */
function deleteSection(user) {
  const alert = alertArea();
  const cancel = h('button', { type: 'button', class: 'button-secondary' }, 'Cancel');
  const confirm = h('button', { type: 'submit', class: 'button-danger' }, `Delete ${user.username}`);
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: 'delete-dialog-heading' }, `Delete ${user.username}?`),
    h('p', null, 'The account, its sessions and its sign-in history are removed. This cannot be undone.'),
    alert,
    h('div', { class: 'actions' }, cancel, confirm),
  );
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { class: 'dialog', 'aria-labelledby': 'delete-dialog-heading' }, form));
  const open = h('button', { type: 'button', class: 'button-danger' }, 'Delete user…');
  open.addEventListener('click', () => {
    clearErrors(form, alert);
    dialog.showModal();
    cancel.focus();
  });
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => open.focus());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await api('DELETE', `/v1/users/${encodeURIComponent(user.id)}`);
      dialog.close();
      notice(`Deleted ${user.username}.`);
      navigate('#/users');
    } catch (error) {
      if (/** @type {any} */ (error)?.problem?.status === 401) dialog.close();
      else showAlert(alert, /** @type {any} */ (error)?.problem?.detail ?? 'The user could not be deleted.');
    }
  });
  return h(
    'section',
    { class: 'card danger-zone', 'aria-labelledby': 'delete-heading' },
    h('h2', { id: 'delete-heading' }, 'Delete'),
    user.id === currentUser()?.id ? h('p', { class: 'hint' }, 'This is your own account.') : null,
    open,
    dialog,
  );
}

/** @param {import('./api.js').User} user */
function historySection(user) {
  const body = h('tbody');
  const more = h('button', { type: 'button', class: 'button-secondary', hidden: true }, 'Show older sign-ins');
  const empty = h('p', { class: 'hint', hidden: true }, 'No sign-ins recorded.');
  const table = h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'history-table' },
      h('caption', { class: 'visually-hidden' }, 'Sign-in history'),
      h(
        'thead',
        null,
        h('tr', null, ...['When', 'Result', 'Method', 'Address', 'Browser or client'].map((title) => h('th', { scope: 'col' }, title))),
      ),
      body,
    ),
  );
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'history-heading' },
    h('h2', { id: 'history-heading' }, 'Sign-in history'),
    empty,
    table,
    more,
  );
  /** @param {string | null} cursor */
  async function load(cursor) {
    const page = await api('GET', `/v1/users/${encodeURIComponent(user.id)}/logins${query({ limit: 20, cursor })}`);
    for (const login of page.items) {
      body.append(
        h(
          'tr',
          null,
          h('td', { 'data-label': 'When' }, formatTime(login.at)),
          h(
            'td',
            { 'data-label': 'Result' },
            h('span', { class: login.success ? 'badge badge-active' : 'badge badge-disabled' }, login.success ? 'Succeeded' : 'Failed'),
          ),
          h('td', { 'data-label': 'Method' }, login.method === 'basic' ? 'HTTP Basic' : 'Password'),
          h('td', { 'data-label': 'Address' }, login.ip ?? '—'),
          h('td', { 'data-label': 'Browser or client' }, login.user_agent ?? '—'),
        ),
      );
    }
    empty.hidden = body.children.length > 0;
    table.hidden = body.children.length === 0;
    more.hidden = !page.next_cursor;
    more.onclick = () => {
      load(page.next_cursor).catch((error) => section.append(errorPanel(error)));
    };
  }
  return { section, load };
}

/** @param {HTMLElement} view @param {string} id */
export async function renderUser(view, id) {
  const hash = `#/users/${encodeURIComponent(id)}`;
  let user;
  try {
    user = await api('GET', `/v1/users/${encodeURIComponent(id)}`);
  } catch (error) {
    view.append(pageHeading('User'), errorPanel(error), h('p', null, h('a', { href: '#/users' }, 'Back to the users')));
    return;
  }
  const history = historySection(user);
  try {
    await history.load(null);
  } catch (error) {
    history.section.append(errorPanel(error));
  }
  view.append(
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/users' }, 'Users'), ' / ', user.username),
    h(
      'div',
      { class: 'heading-row user-heading' },
      pageHeading(user.username),
      h('span', { class: `badge badge-${user.status}` }, user.status === 'active' ? 'Active' : 'Disabled'),
    ),
    details(user),
    h('div', { class: 'columns' }, editForm(user, hash), accessForm(user, hash)),
    history.section,
    deleteSection(user),
  );
}
