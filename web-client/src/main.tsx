import { render } from 'preact';
import { App } from './app';
import './styles.css';

const root = document.getElementById('app');
if (!root) throw new Error('Atelier: #app element missing from index.html');
render(<App />, root);
