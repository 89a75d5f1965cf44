export const Roles = ['admin', 'officer', 'auditor'] as const;
export type Role = (typeof Roles)[number];
