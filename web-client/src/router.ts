// Client-side routes. The server answers every extension-less path with index.html, so a deep
// link (/p/42, /invite/atl_i_...) loads the app and this picks the page.
import { signal } from '@preact/signals';

export type Route =
  | { page: 'home' }
  | { page: 'room'; project: number }
  | { page: 'invite'; code: string }
  | { page: 'not_found' };

export function parseRoute(path: string): Route {
  if (path === '/' || path === '') return { page: 'home' };
  const room = /^\/p\/(\d{1,15})\/?$/.exec(path);
  if (room) return { page: 'room', project: Number(room[1]) };
  const invite = /^\/invite\/([^/]{1,200})\/?$/.exec(path);
  if (invite) return { page: 'invite', code: decodeURIComponent(invite[1] ?? '') };
  return { page: 'not_found' };
}

const here = (): string => (typeof location === 'undefined' ? '/' : location.pathname);

export const route = signal<Route>(parseRoute(here()));

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route.value = parseRoute(path);
  window.scrollTo(0, 0);
}

export function startRouter(): () => void {
  const onPop = (): void => {
    route.value = parseRoute(here());
  };
  window.addEventListener('popstate', onPop);
  return () => window.removeEventListener('popstate', onPop);
}

/** For <a href> inside the app: navigates without reloading (plain clicks only). */
export function linkClick(ev: MouseEvent, path: string): void {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  ev.preventDefault();
  navigate(path);
}
