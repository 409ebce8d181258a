package attack

var metadataRows, callRows, faultRows, loadRows []Row
