package attack

var metadataRows, faultRows, loadRows []Row
