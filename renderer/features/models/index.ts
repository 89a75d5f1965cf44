import { rolesFor, type Feature } from '../feature';
import { ModelsView } from './ModelsView';

export const models: Feature = {
  id: 'models',
  label: 'Models',
  roles: rolesFor('models:list'),
  component: ModelsView,
};
