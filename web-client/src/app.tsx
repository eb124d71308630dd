import { useEffect } from 'preact/hooks';
import { ServerStatus } from './components/ServerStatus';
import { startServerMonitor } from './state/server';

export function App() {
  useEffect(() => startServerMonitor(), []);

  return (
    <div class="shell">
      <header class="topbar">
        <span class="brand">
          <span class="brand-mark" aria-hidden="true" />
          Atelier
        </span>
      </header>
      <main id="main" class="content">
        <h1>Atelier</h1>
        <p class="lede">Create AI art together with your team, on one shared canvas.</p>
        <ServerStatus />
      </main>
      <footer class="footer">Atelier web client</footer>
    </div>
  );
}
