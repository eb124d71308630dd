import { linkClick } from '../router';

export function NotFound({ what = 'page' }: { what?: string }) {
  return (
    <div class="not-found">
      <h1>Not found</h1>
      <p>
        This {what} does not exist, or you are not a member of it. Ask its owner for an invite link.
      </p>
      <p>
        <a href="/" onClick={(e) => linkClick(e, '/')}>
          Back to your projects
        </a>
      </p>
    </div>
  );
}
