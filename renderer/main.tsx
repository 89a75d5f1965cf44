import './zod-setup';
import '@xterm/xterm/css/xterm.css';
// The base stylesheet before App: each feature imports its own (features/<area>/<area>.css), and
// Vite bundles them into one stylesheet in import order, so the base comes first as it always did.
import './styles.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createApi } from './api';
import { App } from './App';

const root = document.getElementById('root');
if (!root) throw new Error('#root missing from index.html');
const api = createApi();
createRoot(root).render(
  <StrictMode>
    <App api={api} />
  </StrictMode>,
);
