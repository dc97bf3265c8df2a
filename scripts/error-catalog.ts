// Collects every domain's error registry and renders docs/errors.md (style.md rule 6).
// `npx tsx scripts/error-catalog.ts --write` regenerates the file; test/errors-doc.test.ts keeps it true.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ErrorRegistry } from '../src/errors/index.ts';
import { ApiErrors } from '../src/api/index.ts';
import { AppErrors } from '../src/app/index.ts';
import { CliErrors } from '../src/cli/errors.ts';
import { ConfigErrors } from '../src/config/index.ts';
import { DeviceErrors } from '../src/device/index.ts';
import { EventErrors } from '../src/events/index.ts';
import { PkiErrors } from '../src/pki/index.ts';
import { PolicyErrors } from '../src/policy/index.ts';
import { ProvisioningErrors } from '../src/provisioning/index.ts';
import { RegistryErrors } from '../src/registry/index.ts';
import { StoreErrors } from '../src/store/index.ts';
import { TemplateErrors } from '../src/templates/index.ts';
import { STATUS_OF_KIND } from '../src/api/index.ts';

/** Every domain, in the order the document lists them. */
export const DOMAINS: readonly { name: string; registry: ErrorRegistry<string> }[] = [
  { name: 'API (control plane)', registry: ApiErrors },
  { name: 'Configuration', registry: ConfigErrors },
  { name: 'Process start', registry: AppErrors },
  { name: 'Store', registry: StoreErrors },
  { name: 'Event bus', registry: EventErrors },
  { name: 'Registry', registry: RegistryErrors },
  { name: 'PKI', registry: PkiErrors },
  { name: 'Policy language', registry: PolicyErrors },
  { name: 'Template language', registry: TemplateErrors },
  { name: 'Provisioning', registry: ProvisioningErrors },
  { name: 'CLI', registry: CliErrors },
  { name: 'Device SDK (`gatehouse/device`, and the CLI\'s `device` commands)', registry: DeviceErrors },
];

/** Renders docs/errors.md from the registries. */
export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes',
    '',
    'Every error Gatehouse returns carries a stable `code`. The REST API sends it in an RFC 9457 problem document',
    '(`application/problem+json`, fields `type`, `title`, `status`, `code`, `detail`); the CLI prints `error <CODE>: <message>`.',
    'This file is generated from the code (`npx tsx scripts/error-catalog.ts --write`); a test fails when they differ.',
    '',
  ];
  for (const d of DOMAINS) {
    lines.push(`## ${d.name}`, '', '| code | HTTP | meaning |', '|---|---|---|');
    for (const [code, spec] of Object.entries(d.registry.specs)) lines.push(`| \`${code}\` | ${STATUS_OF_KIND[spec.kind]} | ${spec.description.replace(/\|/g, '\\|')} |`);
    lines.push('');
  }
  return lines.join('\n');
}

if (process.argv.includes('--write')) {
  writeFileSync(path.resolve(import.meta.dirname, '../docs/errors.md'), renderErrorsDoc());
}
