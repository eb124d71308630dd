// The signed-in user's projects, newest first and a page at a time: open one, or create a new one.
import { useEffect, useState } from 'preact/hooks';
import type { Project } from '../api/models';
import { rest } from '../api/rest';
import { describeError, errorField, FieldError } from '../components/FieldError';
import { linkClick, navigate } from '../router';
import { justBecameAdmin } from '../state/session';

export function ProjectsPage() {
  const [projects, setProjects] = useState<Project[] | null>(null);
  // The cursor of the next page (null: everything is shown).
  const [nextBefore, setNextBefore] = useState<number | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [name, setName] = useState('');
  const [createError, setCreateError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    rest
      .projects()
      .then((page) => {
        if (!live) return;
        setProjects(page.items);
        setNextBefore(page.nextBefore);
      })
      .catch((err) => live && setLoadError(describeError(err)));
    return () => {
      live = false;
    };
  }, []);

  const loadMore = async () => {
    if (nextBefore === null) return;
    setLoadingMore(true);
    setLoadError(null);
    try {
      const page = await rest.projects(nextBefore);
      setProjects((shown) => [...(shown ?? []), ...page.items]);
      setNextBefore(page.nextBefore);
    } catch (err) {
      setLoadError(describeError(err));
    } finally {
      setLoadingMore(false);
    }
  };

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setCreateError(null);
    try {
      const p = await rest.createProject(name.trim());
      navigate(`/p/${p.id}`);
    } catch (err) {
      setCreateError(errorField(err) === 'name' ? describeError(err) : describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="projects">
      {justBecameAdmin.value && (
        <p class="notice" role="status">
          You are the first user of this server, so you are its admin.
        </p>
      )}
      <h1>Your projects</h1>
      <form class="card inline-form" onSubmit={create}>
        <label for="new-project">Project name</label>
        <input
          id="new-project"
          value={name}
          maxLength={100}
          onInput={(e) => setName(e.currentTarget.value)}
          aria-describedby={createError ? 'new-project-error' : undefined}
          required
        />
        <button type="submit" disabled={busy || name.trim() === ''}>
          Create project
        </button>
        <FieldError id="new-project-error" message={createError} />
      </form>
      {loadError && (
        <p class="field-error" role="alert">
          {loadError}
        </p>
      )}
      {projects === null && !loadError && <p class="muted">Loading…</p>}
      {projects !== null && projects.length === 0 && (
        <p class="muted">No projects yet. Create one, or open an invite link from a teammate.</p>
      )}
      {projects !== null && projects.length > 0 && (
        <ul class="project-list">
          {projects.map((p) => (
            <li key={p.id}>
              <a href={`/p/${p.id}`} onClick={(e) => linkClick(e, `/p/${p.id}`)}>
                {p.name}
              </a>
              <span class="muted small"> · {p.role}</span>
            </li>
          ))}
        </ul>
      )}
      {projects !== null && nextBefore !== null && (
        <button type="button" class="secondary" disabled={loadingMore} onClick={() => void loadMore()}>
          {loadingMore ? 'Loading…' : 'Show more projects'}
        </button>
      )}
    </div>
  );
}
