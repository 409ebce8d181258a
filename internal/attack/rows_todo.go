package attack

var packageRows, metadataRows, callRows, faultRows, loadRows []Row
