// Package docs holds the operators' guides (deploy.md: running amaretti on
// several hosts). It has no code; its test keeps the guides honest: every
// flag they name exists in the programs' --help, with the environment
// variable and default they give, every metric exists in amarettid, every
// test they cite exists, and the example alert rules are well-formed.
package docs
