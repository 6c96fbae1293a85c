// The users table: search, filters and sort kept in the address (#/users?q=…), keyset pages from
// GET /v1/users. On a narrow screen the rows become cards (admin.css).
import { api, query } from './api.js';
import { errorPanel, field, formatTime, h, pageHeading } from './dom.js';
import { navigate } from './nav.js';

const PAGE_SIZE = 20;
const SORTS = /** @type {[string, string][]} */ ([
  ['-created_at', 'Newest first'],
  ['created_at', 'Oldest first'],
  ['username', 'Username A–Z'],
  ['-username', 'Username Z–A'],
  ['-last_login_at', 'Most recent sign-in first'],
  ['last_login_at', 'Least recent sign-in first'],
]);

/** Cursors of the pages before the current one, for "Previous page", per filter set. */
let history = { key: '', cursors: /** @type {(string | null)[]} */ ([]) };

/** @param {URLSearchParams} params */
function filtersOf(params) {
  return {
    q: params.get('q') ?? '',
    status: params.get('status') ?? '',
    role: params.get('role') ?? '',
    never: params.get('never') === '1',
    before: params.get('before') ?? '',
    sort: params.get('sort') ?? '-created_at',
  };
}

/** @param {ReturnType<typeof filtersOf>} filters @param {string | null} cursor */
function listPath(filters, cursor) {
  return `/v1/users${query({
    limit: PAGE_SIZE,
    q: filters.q.trim(),
    status: filters.status,
    role: filters.role,
    never_logged_in: filters.never ? 'true' : undefined,
    last_login_before: filters.before ? `${filters.before}T00:00:00.000Z` : undefined,
    sort: filters.sort,
    cursor,
  })}`;
}

/** @param {ReturnType<typeof filtersOf>} filters */
function filterForm(filters) {
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Search and filter users' },
    field({ name: 'q', label: 'Search', type: 'search', value: filters.q, hint: 'Start of a username or email address' }),
    field({
      name: 'status',
      label: 'Status',
      value: filters.status,
      options: [
        ['', 'Any'],
        ['active', 'Active'],
        ['disabled', 'Disabled'],
      ],
    }),
    field({
      name: 'role',
      label: 'Role',
      value: filters.role,
      options: [
        ['', 'Any'],
        ['admin', 'Admin'],
        ['user', 'User'],
      ],
    }),
    field({ name: 'before', label: 'Last sign-in before', type: 'date', value: filters.before }),
    field({ name: 'sort', label: 'Sort', value: filters.sort, options: SORTS }),
    h(
      'label',
      { class: 'check filter-check' },
      h('input', { type: 'checkbox', name: 'never', value: '1', checked: filters.never }),
      ' Never signed in',
    ),
    h(
      'div',
      { class: 'filter-actions' },
      h('button', { type: 'submit', class: 'button-primary' }, 'Search'),
      h('a', { href: '#/users', class: 'button-link' }, 'Clear'),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(/** @type {HTMLFormElement} */ (form));
    const params = new URLSearchParams();
    for (const name of ['q', 'status', 'role', 'before', 'sort', 'never']) {
      const value = String(data.get(name) ?? '').trim();
      if (value && !(name === 'sort' && value === '-created_at')) params.set(name, value);
    }
    const text = params.toString();
    navigate(text ? `#/users?${text}` : '#/users');
  });
  return form;
}

/** @param {import('./api.js').User} user */
function row(user) {
  const status = h('span', { class: `badge badge-${user.status}` }, user.status === 'active' ? 'Active' : 'Disabled');
  return h(
    'tr',
    null,
    h('th', { scope: 'row', 'data-label': 'Username' }, h('a', { href: `#/users/${encodeURIComponent(user.id)}` }, user.username)),
    h('td', { 'data-label': 'Email' }, user.email),
    h('td', { 'data-label': 'Name' }, user.display_name ?? '—'),
    h('td', { 'data-label': 'Roles' }, user.roles.join(', ')),
    h('td', { 'data-label': 'Status' }, status),
    h('td', { 'data-label': 'Last sign-in' }, formatTime(user.last_login_at)),
    h('td', { 'data-label': 'Created' }, formatTime(user.created_at)),
  );
}

/** @param {HTMLElement} view @param {URLSearchParams} params */
export async function renderUsers(view, params) {
  const filters = filtersOf(params);
  const key = JSON.stringify(filters);
  if (history.key !== key) history = { key, cursors: [] };
  const cursor = params.get('cursor');
  view.append(
    h('div', { class: 'heading-row' }, pageHeading('Users'), h('a', { href: '#/users/new', class: 'button-primary' }, 'New user')),
    filterForm(filters),
  );
  let page;
  try {
    page = await api('GET', listPath(filters, cursor));
  } catch (error) {
    view.append(errorPanel(error));
    return;
  }
  const pageNumber = history.cursors.indexOf(cursor) >= 0 ? history.cursors.indexOf(cursor) + 1 : history.cursors.length + 1;
  if (!history.cursors.includes(cursor)) history.cursors.push(cursor);
  const results =
    page.items.length === 0 ? 'No users match.' : `Page ${pageNumber}: ${page.items.length} user${page.items.length === 1 ? '' : 's'}`;
  const pageHref = (/** @type {string | null} */ pageCursor) => {
    const next = new URLSearchParams(params);
    if (pageCursor) next.set('cursor', pageCursor);
    else next.delete('cursor');
    const text = next.toString();
    return text ? `#/users?${text}` : '#/users';
  };
  const previous = pageNumber > 1 ? pageHref(history.cursors[pageNumber - 2] ?? null) : null;
  view.append(
    h('p', { class: 'results', role: 'status' }, results),
    // A div either way: append() would print a null.
    page.items.length === 0
      ? h('div')
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'users-table' },
            h('caption', { class: 'visually-hidden' }, 'Users'),
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                ...['Username', 'Email', 'Name', 'Roles', 'Status', 'Last sign-in', 'Created'].map((title) =>
                  h('th', { scope: 'col' }, title),
                ),
              ),
            ),
            h('tbody', null, ...page.items.map(row)),
          ),
        ),
    h(
      'nav',
      { class: 'pager', 'aria-label': 'Pages' },
      previous ? h('a', { href: previous, class: 'button-secondary', rel: 'prev' }, 'Previous page') : null,
      page.next_cursor ? h('a', { href: pageHref(page.next_cursor), class: 'button-secondary', rel: 'next' }, 'Next page') : null,
    ),
  );
}
