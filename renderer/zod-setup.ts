import { z } from 'zod';

// The CSP has no 'unsafe-eval': zod must never try to compile parsers with new Function().
// Imported first by main.tsx so it runs before any schema is used.
z.config({ jitless: true });
