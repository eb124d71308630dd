// Who is signed in. `undefined` while the first /me is on its way, `null` when nobody is.
import { signal } from '@preact/signals';
import { isApiError } from '../api/client';
import type { User } from '../api/models';
import { rest as defaultRest, type Rest } from '../api/rest';
import { LiveClient } from '../live/live_client';

export const currentUser = signal<User | null | undefined>(undefined);
/** Set once right after the first account of a server was created (it is the admin). */
export const justBecameAdmin = signal(false);
/** The live connection of the signed-in user. */
export const live = signal<LiveClient | null>(null);

const restImpl: Rest = defaultRest;

function wsUrl(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/api/v1/ws`;
}

function signedIn(user: User | null): void {
  currentUser.value = user;
  live.value?.stop();
  live.value = null;
  if (user && typeof WebSocket !== 'undefined') {
    const client = new LiveClient({ url: wsUrl() });
    client.start();
    live.value = client;
  }
}

export async function loadSession(): Promise<void> {
  try {
    const me = await restImpl.me();
    signedIn(me.user);
  } catch (err) {
    if (isApiError(err) && err.status === 401) signedIn(null);
    else throw err;
  }
}

export async function logIn(username: string, password: string): Promise<void> {
  const s = await restImpl.login(username, password);
  signedIn(s.user);
}

export async function signUp(username: string, password: string, invite?: string): Promise<void> {
  const s = await restImpl.register(username, password, invite);
  justBecameAdmin.value = s.user.is_admin;
  signedIn(s.user);
}

export async function logOut(): Promise<void> {
  try {
    await restImpl.logout();
  } finally {
    justBecameAdmin.value = false;
    signedIn(null);
  }
}
