// @peculiar/x509 (through tsyringe) needs the reflect polyfill before it loads.
import 'reflect-metadata';
