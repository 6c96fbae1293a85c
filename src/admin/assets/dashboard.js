// The dashboard: user counts and sign-ins per day, from GET /v1/stats.
import { api } from './api.js';
import { signInChart } from './chart.js';
import { errorPanel, h, pageHeading } from './dom.js';

/** @param {string} label @param {number} value @param {string} [href] */
function stat(label, value, href) {
  const number = h('span', { class: 'stat-value' }, value.toLocaleString());
  return h(
    'div',
    { class: 'stat', 'data-stat': label },
    h('span', { class: 'stat-label' }, label),
    href ? h('a', { href }, number) : number,
  );
}

/** @param {HTMLElement} view */
export async function renderDashboard(view) {
  view.append(pageHeading('Dashboard'));
  let stats;
  try {
    stats = await api('GET', '/v1/stats');
  } catch (error) {
    view.append(errorPanel(error));
    return;
  }
  const { users } = stats;
  view.append(
    h(
      'section',
      { 'aria-labelledby': 'users-at-a-glance' },
      h('h2', { id: 'users-at-a-glance' }, 'Users'),
      h(
        'div',
        { class: 'stats' },
        stat('Total', users.total, '#/users'),
        stat('Active', users.active, '#/users?status=active'),
        stat('Disabled', users.disabled, '#/users?status=disabled'),
        stat('Signed in within 24 h', users.signed_in_24h),
        stat('Signed in within 7 days', users.signed_in_7d),
        stat('Never signed in', users.never_signed_in, '#/users?never=1'),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'sign-ins-per-day' },
      h('h2', { id: 'sign-ins-per-day' }, 'Sign-ins per day, last 30 days (UTC)'),
      signInChart(stats.sign_ins_per_day),
    ),
  );
}
