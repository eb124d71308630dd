// Who is in the project, and (for owners) invites, role changes and removals.
import { useState } from 'preact/hooks';
import type { Invite, Role } from '../api/models';
import { rest } from '../api/rest';
import type { RoomStore } from '../state/room';
import { describeError } from './FieldError';

const ROLES: Role[] = ['viewer', 'editor', 'owner'];

export function MembersPanel({ project, store, selfId }: { project: number; store: RoomStore; selfId: number }) {
  const isOwner = store.role.value === 'owner';
  const [inviteRole, setInviteRole] = useState<Role>('editor');
  const [invite, setInvite] = useState<Invite | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(describeError(err));
    }
  };

  return (
    <section class="card members" aria-label="Members">
      <h2>Members</h2>
      <ul class="member-list">
        {store.members.value.map((m) => (
          <li key={m.user_id}>
            <span class="avatar" aria-hidden="true">
              {m.username.slice(0, 2).toUpperCase()}
            </span>
            <span class="member-name">
              {m.username}
              {m.user_id === selfId ? ' (you)' : ''}
            </span>
            {isOwner && m.user_id !== selfId ? (
              <>
                <label class="sr-only" for={`role-${m.user_id}`}>
                  Role of {m.username}
                </label>
                <select
                  id={`role-${m.user_id}`}
                  value={m.role}
                  onChange={(e) => {
                    const role = e.currentTarget.value as Role;
                    void act(() => rest.setRole(project, m.user_id, role));
                  }}
                >
                  {ROLES.map((r) => (
                    <option key={r} value={r}>
                      {r}
                    </option>
                  ))}
                </select>
                <button
                  type="button"
                  class="secondary small"
                  aria-label={`Remove ${m.username}`}
                  onClick={() => void act(() => rest.removeMember(project, m.user_id))}
                >
                  Remove
                </button>
              </>
            ) : (
              <span class="muted small">{m.role}</span>
            )}
          </li>
        ))}
      </ul>
      {isOwner && (
        <div class="invite">
          <h3>Invite people</h3>
          <div class="row">
            <label for="invite-role">Role</label>
            <select id="invite-role" value={inviteRole} onChange={(e) => setInviteRole(e.currentTarget.value as Role)}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
            <button
              type="button"
              onClick={() =>
                void act(async () => {
                  setCopied(false);
                  setInvite(await rest.createInvite(project, inviteRole));
                })
              }
            >
              Create invite link
            </button>
          </div>
          {invite && (
            <div class="row">
              <label for="invite-link">Invite link</label>
              <input id="invite-link" readOnly value={invite.url} onFocus={(e) => e.currentTarget.select()} />
              <button
                type="button"
                class="secondary small"
                onClick={() =>
                  void navigator.clipboard?.writeText(invite.url).then(
                    () => setCopied(true),
                    () => setCopied(false),
                  )
                }
              >
                {copied ? 'Copied' : 'Copy'}
              </button>
              <p class="muted small">
                Joins as {invite.role}; works {invite.max_uses} times, until {new Date(invite.expires_at).toLocaleDateString()}.
              </p>
            </div>
          )}
        </div>
      )}
      {error && (
        <p class="field-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
