export { provisionTenant } from './provision-tenant';
